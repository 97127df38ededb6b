//! Building an aws-sdk-kinesis client.
//!
//! [`KinesisTarget::Aws`] uses the standard AWS chain (AWS_PROFILE, environment keys, SSO,
//! instance role; AWS_REGION; AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL for any compatible
//! endpoint). [`KinesisTarget::Local`] points at a Kinesis-compatible endpoint on this machine
//! (the embedded one, kinesis-local) with dummy credentials, so no AWS account is needed.

use aws_sdk_kinesis::{Client, config::Credentials};

/// Which Kinesis to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KinesisTarget {
    /// Real AWS (or whatever the AWS_ENDPOINT_URL* variables point at).
    Aws,
    /// A local Kinesis-compatible endpoint, e.g. `http://127.0.0.1:4567`.
    Local { endpoint_url: String },
}

/// Region used with a local endpoint when AWS_REGION is not set.
pub const LOCAL_REGION: &str = "us-east-1";

/// Builds a client for `target`. Never logs credentials.
pub async fn build_client(target: &KinesisTarget) -> Client {
    match target {
        KinesisTarget::Aws => {
            let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Client::new(&shared)
        }
        KinesisTarget::Local { endpoint_url } => {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| LOCAL_REGION.to_string());
            let config = aws_sdk_kinesis::Config::builder()
                .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
                .region(aws_sdk_kinesis::config::Region::new(region))
                .endpoint_url(endpoint_url)
                .credentials_provider(Credentials::new(
                    "local",
                    "local",
                    None,
                    None,
                    "streamboard-local",
                ))
                .build();
            Client::from_conf(config)
        }
    }
}
