use super::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/reports`: exports of stored history.
#[component]
pub fn Reports() -> impl IntoView {
    view! {
        <Title text="Reports" />
        <PageHeader title="Reports" subtitle="CSV, JSON and printable reports for any range." />
        <EmptyState heading="Nothing to report yet">
            <p>"Reports cover stored metric history; it starts accumulating once metrics are computed."</p>
        </EmptyState>
    }
}
