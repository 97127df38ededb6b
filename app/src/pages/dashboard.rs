use super::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/`: every stream and every metric at a glance.
#[component]
pub fn Dashboard() -> impl IntoView {
    view! {
        <Title text="Dashboard" />
        <PageHeader title="Dashboard" subtitle="Every stream and metric, live." />
        <EmptyState heading="No streams are being read yet">
            <p>
                "Streamboard reads the Kinesis streams named in its configuration ("
                <code>"[[streams]]"</code> " in the config file, or " <code>"--stream NAME"</code>
                "). Their records per second, lag and metrics appear here as soon as a reader starts."
            </p>
        </EmptyState>
    }
}
