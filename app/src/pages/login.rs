//! `/login`: the login form, and with `?setup=SECRET` (the one-time link the server logs when
//! it has no users) the form that creates the first admin. Plain HTML forms posted to the
//! server (`POST /login`, `POST /setup`), so they work before and without hydration; the
//! server redirects back here with `?error=CODE` when it refuses.

use contract::auth::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

const INPUT: &str = "w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm \
                     dark:border-slate-700 dark:bg-slate-900";
const LABEL: &str = "block text-sm font-medium";

/// The message for a refusal code (`retry`: seconds until a lockout ends).
fn message(code: &str, retry: Option<&str>) -> String {
    match code {
        "wrong" => "Wrong user name or password.".to_string(),
        "throttled" => {
            let seconds = retry.and_then(|r| r.parse::<u64>().ok()).unwrap_or(60);
            let wait = if seconds >= 120 {
                format!("{} minutes", seconds.div_ceil(60))
            } else {
                format!("{seconds} seconds")
            };
            format!(
                "Too many failed logins for this user or from this address: try again in {wait}."
            )
        }
        "setup-used" => "That setup link was already used or is not valid; log in, or run \
                         `streamboard user add NAME --role admin`."
            .to_string(),
        "invalid-name" => {
            "Choose a user name of 1 to 64 letters, digits, '.', '_', '-' or '@'.".to_string()
        }
        "invalid-password" => "Choose a password of at least 8 characters.".to_string(),
        _ => "The server could not check the login; try again.".to_string(),
    }
}

#[component]
pub fn Login() -> impl IntoView {
    let query = use_query_map();
    let get = move |key: &str| query.with(|q| q.get(key));
    let error = move || {
        get("error").map(|code| {
            view! {
                <p role="alert" data-testid="login-error" class="rounded-md bg-red-50 px-3 py-2 text-sm text-red-700 dark:bg-red-950 dark:text-red-300">
                    {message(&code, get("retry").as_deref())}
                </p>
            }
        })
    };
    let next = move || get("next").unwrap_or_else(|| "/".to_string());
    let setup = move || get("setup");
    view! {
        <Title text="Log in" />
        <section class="mx-auto mt-12 max-w-sm rounded-xl border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900">
            {move || match setup() {
                Some(secret) => view! {
                    <h1 class="text-xl font-semibold">"Create the first admin"</h1>
                    <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">
                        "This one-time link creates a user with the " {Role::Admin.as_str()} " role."
                    </p>
                    <form method="post" action="/setup" class="mt-4 space-y-3">
                        {error}
                        <input type="hidden" name="setup" value=secret />
                        <label class=LABEL for="setup-name">"User name"</label>
                        <input class=INPUT id="setup-name" name="name" autocomplete="username" required />
                        <label class=LABEL for="setup-password">"Password"</label>
                        <input class=INPUT id="setup-password" name="password" type="password" autocomplete="new-password" minlength="8" required />
                        <button type="submit" class="w-full rounded-md bg-slate-900 px-3 py-2 text-sm font-medium text-white dark:bg-slate-100 dark:text-slate-900">"Create admin"</button>
                    </form>
                }.into_any(),
                None => view! {
                    <h1 class="text-xl font-semibold">"Log in to Streamboard"</h1>
                    <form method="post" action="/login" class="mt-4 space-y-3">
                        {error}
                        <input type="hidden" name="next" value=next />
                        <label class=LABEL for="login-name">"User name"</label>
                        <input class=INPUT id="login-name" name="name" autocomplete="username" required />
                        <label class=LABEL for="login-password">"Password"</label>
                        <input class=INPUT id="login-password" name="password" type="password" autocomplete="current-password" required />
                        <button type="submit" class="w-full rounded-md bg-slate-900 px-3 py-2 text-sm font-medium text-white dark:bg-slate-100 dark:text-slate-900">"Log in"</button>
                    </form>
                }.into_any(),
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(message("wrong", None), "Wrong user name or password.");
        assert!(message("throttled", Some("59")).contains("try again in 59 seconds"));
        assert!(message("throttled", Some("900")).contains("try again in 15 minutes"));
        assert!(message("<script>", None).starts_with("The server could not"));
    }
}
