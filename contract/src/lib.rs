//! The contract between Streamboard's browser and its server: every shape that crosses the
//! wire, and nothing that renders or stores it. The server produces these types, the browser
//! consumes them (and sends a few back); neither side defines a wire shape of its own.
//!
//! # Layout
//! - [`api`]: JSON bodies of the REST API under `/api/v1` (metrics, queries, alerts, export
//!   estimates, errors).
//! - [`protocol`]: the live WebSocket protocol on `/ws` (messages, topics, payloads).
//! - [`auth`]: roles, users and API tokens (`/api/v1/me`, `/users`, `/tokens`).
//! - [`dashboard`]: user-built dashboards (`/api/v1/dashboards`): the document, its checks,
//!   the panel grid and label variables.
//! - [`alert`]: the closed sets of alerting (states, severities, comparisons, policies, ...).
//! - [`tail`]: the live record tail (its query, records and updates).
//! - [`summary`]: the aggregates of a bucket or window ([`summary::Summary`]) and the
//!   statistics a rule can pick from them.
//! - [`units`]: durations as people write them (`30s`, `5m`) and number formatting.
//! - [`date`]: proleptic Gregorian date math and the UTC minute format of date inputs.
//!
//! Closed sets travel as strings (`"firing"`, `">="`, `"p99.9"`) but are enums on both sides:
//! each has `as_str` (its wire name), `ALL`, `Display`, and a `FromStr` whose error says which
//! values are accepted; serde uses the same names, so JSON, query strings and stored rows agree.
//!
//! Plain serde and no UI or server dependency: the crate builds for `wasm32-unknown-unknown`.

use std::fmt;

pub mod alert;
pub mod api;
pub mod auth;
pub mod dashboard;
pub mod date;
pub mod protocol;
pub mod summary;
pub mod tail;
pub mod units;

/// A value outside a closed set; the message names the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError(message.into())
    }
}

/// Defines a closed set sent as a string (`pub enum Name ("what it is") { Variant = "wire", }`):
/// the enum, its wire names (`as_str`, `from_name`, `ALL`), `Display`, comparison with `&str`,
/// and serde through the wire names. Deserialisation goes through `FromStr`, so a bad value is
/// refused with its message: with `refused: "suffix";` after the enum, `FromStr` reads the wire
/// names and refuses anything else with `"value"suffix`; without it (aliases, trimming), the
/// set writes its own `FromStr`.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
        refused: $suffix:literal;
    ) => {
        $crate::closed_set! {
            $(#[$meta])*
            pub enum $name ($what) {
                $( $(#[$vmeta])* $variant = $text, )+
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ParseError;

            fn from_str(text: &str) -> Result<Self, $crate::ParseError> {
                Self::from_name(text)
                    .ok_or_else(|| $crate::ParseError(format!("{text:?}{}", $suffix)))
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The name on the wire (JSON, query strings, stored rows).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value whose wire name is exactly `text`.
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The wire names, comma-separated (for messages).
            pub fn names() -> String {
                [$($text),+].join(", ")
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for &'static str {
            fn from(value: $name) -> Self {
                value.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::FromStrVisitor::<$name>::new($what))
            }
        }
    };
}
pub(crate) use closed_set;

/// Deserialises a string through `T::from_str`, keeping its error message.
pub(crate) struct FromStrVisitor<T> {
    what: &'static str,
    marker: std::marker::PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            marker: std::marker::PhantomData,
        }
    }
}

impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
where
    T: std::str::FromStr<Err = ParseError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name", self.what)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(|e: ParseError| E::custom(e.0))
    }
}
