use super::{EmptyState, PageHeader};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/streams`: shard health per stream.
#[component]
pub fn Streams() -> impl IntoView {
    view! {
        <Title text="Streams" />
        <PageHeader title="Streams" subtitle="Shards, readers and lag per stream." />
        <EmptyState heading="No streams configured">
            <p>"Add a stream to the configuration to see its shards, their state and how far behind each reader is."</p>
        </EmptyState>
    }
}
