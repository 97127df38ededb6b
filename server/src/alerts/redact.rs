//! Webhook URL credentials kept out of what the server shows (pure).
//!
//! A webhook URL may carry credentials in its user-info (`https://user:secret@host/hook`),
//! which delivery sends as HTTP Basic authorization ([`take_credentials`]).
//! Everything that leaves the server with a rule (the rule API, the rule list and form, the
//! exported file) shows them as [`MASK`] (`https://***@host/hook`); delivery errors name only
//! the host ([`super::notify`]). When such a masked URL comes back (a rule saved from the form,
//! a test send, a re-imported export), it stands for the stored URL it was shown for: the
//! stored URL that masks to exactly the same text. A masked URL with no such stored URL is
//! refused when the rule is checked ([`super::rule`] sees `***` as the user-info and the
//! caller reports that nothing matches).

use contract::api::{AlertRuleSpec, AlertTarget};

/// What a URL's user-info is shown as.
pub const MASK: &str = "***";

/// Where a URL's user-info is: the byte range before the `@` of its authority, if it has one.
fn userinfo_range(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    let at = url[start..start + authority_len].rfind('@')?;
    Some(start..start + at)
}

/// Splits the user-info off `url`: the URL without it, and the `Authorization: Basic` value
/// it stands for (user and password percent-decoded), as curl and browsers send it.
pub fn take_credentials(url: &str) -> (String, Option<String>) {
    use base64::Engine;
    let Some(range) = userinfo_range(url) else {
        return (url.to_string(), None);
    };
    let userinfo = &url[range.clone()];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let pair = format!("{}:{}", percent_decode(user), percent_decode(password));
    let without = format!("{}{}", &url[..range.start], &url[range.end + 1..]);
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    );
    (without, Some(header))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with its user-info (if any) replaced by [`MASK`].
pub fn mask_url(url: &str) -> String {
    match userinfo_range(url) {
        Some(range) => format!("{}{MASK}{}", &url[..range.start], &url[range.end..]),
        None => url.to_string(),
    }
}

/// True when `url`'s user-info is the mask (it stands for a stored URL's).
pub fn is_masked(url: &str) -> bool {
    userinfo_range(url).is_some_and(|range| &url[range] == MASK)
}

/// Masks the credentials of every webhook target of `spec`.
pub fn mask_spec(spec: &mut AlertRuleSpec) {
    for target in &mut spec.targets {
        if let AlertTarget::Webhook { url } = target {
            *url = mask_url(url);
        }
    }
}

/// Why a masked URL was refused, for a rule's `targets` field.
pub fn unknown_mask_message(url: &str) -> String {
    format!(
        "webhook url {url:?} hides its credentials ({MASK}), but no stored rule has a URL it \
         stands for: enter the URL with its credentials"
    )
}

/// Puts back the credentials of masked webhook URLs in `spec` from the stored URLs they were
/// shown for. Returns the first masked URL that matches no stored URL (the caller refuses it).
pub fn unmask_spec<'a>(
    spec: &mut AlertRuleSpec,
    stored: impl IntoIterator<Item = &'a AlertRuleSpec> + Clone,
) -> Result<(), String> {
    for target in &mut spec.targets {
        let AlertTarget::Webhook { url } = target else {
            continue;
        };
        if !is_masked(url) {
            continue;
        }
        let original = stored
            .clone()
            .into_iter()
            .flat_map(|spec| spec.targets.iter())
            .find_map(|t| match t {
                AlertTarget::Webhook { url: stored } if mask_url(stored) == *url => Some(stored),
                _ => None,
            });
        match original {
            Some(original) => *url = original.clone(),
            None => return Err(url.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_user_info_is_masked() {
        let cases = [
            (
                "https://alice:s3cret@hooks.example.com/a?x=1",
                "https://***@hooks.example.com/a?x=1",
            ),
            (
                "https://token@hooks.example.com",
                "https://***@hooks.example.com",
            ),
            (
                "http://hooks.example.com/a@b",
                "http://hooks.example.com/a@b",
            ),
            (
                "http://hooks.example.com/?u=a@b",
                "http://hooks.example.com/?u=a@b",
            ),
            ("https://a:b@c@host:8443/p", "https://***@host:8443/p"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(mask_url(url), shown, "{url}");
        }
        assert!(is_masked("https://***@host/p"));
        assert!(!is_masked("https://x***@host/p"));
        assert!(!is_masked("https://host/***"));
    }

    #[test]
    fn credentials_become_a_basic_authorization_header() {
        assert_eq!(
            take_credentials("https://alice:s%40cret@hooks.example.com/a"),
            (
                "https://hooks.example.com/a".to_string(),
                // base64("alice:s@cret")
                Some("Basic YWxpY2U6c0BjcmV0".to_string())
            )
        );
        assert_eq!(
            take_credentials("https://token@h/a"),
            (
                "https://h/a".to_string(),
                Some("Basic dG9rZW46".to_string())
            )
        );
        assert_eq!(
            take_credentials("https://h/a@b"),
            ("https://h/a@b".to_string(), None)
        );
    }

    fn spec_with(urls: &[&str]) -> AlertRuleSpec {
        let mut spec: AlertRuleSpec = serde_json::from_value(serde_json::json!({
            "name": "r", "metric": "m", "statistic": "p99", "window": "1m",
            "comparison": ">", "threshold": 1.0
        }))
        .unwrap();
        spec.targets = urls
            .iter()
            .map(|u| AlertTarget::Webhook { url: u.to_string() })
            .collect();
        spec
    }

    #[test]
    fn a_masked_url_comes_back_as_the_stored_one_it_was_shown_for() {
        let stored = [
            spec_with(&["https://alice:one@a.example.com/hook"]),
            spec_with(&["https://bob:two@b.example.com/hook"]),
        ];
        let mut shown = stored[1].clone();
        mask_spec(&mut shown);
        assert_eq!(
            shown.targets,
            vec![AlertTarget::Webhook {
                url: "https://***@b.example.com/hook".into()
            }]
        );
        unmask_spec(&mut shown, &stored).unwrap();
        assert_eq!(shown, stored[1]);

        // A new URL passes as it is; a masked one that was never shown is refused.
        let mut new = spec_with(&["https://carol:three@c.example.com/hook"]);
        unmask_spec(&mut new, &stored).unwrap();
        assert_eq!(
            new.targets,
            spec_with(&["https://carol:three@c.example.com/hook"]).targets
        );
        let mut forged = spec_with(&["https://***@c.example.com/hook"]);
        assert_eq!(
            unmask_spec(&mut forged, &stored),
            Err("https://***@c.example.com/hook".to_string())
        );
    }
}
