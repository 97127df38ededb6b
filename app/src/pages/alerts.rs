use super::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/alerts`: threshold rules and their history.
#[component]
pub fn Alerts() -> impl IntoView {
    view! {
        <Title text="Alerts" />
        <PageHeader title="Alerts" subtitle="Threshold rules on any metric, with their history." />
        <EmptyState heading="No alert rules">
            <p>"Alert rules watch a metric's statistic against a threshold; none are defined."</p>
        </EmptyState>
    }
}
