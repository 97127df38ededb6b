//! `/admin` (admins only): the users who log in (add, delete, end their sessions) and the API
//! tokens for scripts (create, shown once; revoke, which takes effect at once).

use super::PageHeader;
use crate::{
    fetch::{FetchError, Method, get_json, send_json},
    session::use_me,
};
use contract::auth::{CreatedToken, NewToken, NewUser, Role, TokenList, UserInfo, UserList};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;

const BUTTON: &str = "rounded-md border border-slate-300 px-3 py-1 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800";
const PRIMARY: &str = "rounded-md bg-slate-900 px-3 py-1 text-sm font-medium text-white hover:bg-slate-700 disabled:opacity-50 dark:bg-slate-100 dark:text-slate-900";
const INPUT: &str = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";
const PANEL: &str =
    "rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900";

fn role_options(selected: Role) -> impl IntoView {
    Role::ALL
        .map(|role| view! { <option value=role.as_str() selected=role == selected>{role.as_str()}</option> })
        .collect_view()
}

fn problem_text(error: &FetchError) -> String {
    match error.field() {
        Some(field) => format!("{field}: {error}"),
        None => error.to_string(),
    }
}

#[component]
fn Users() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let problem = RwSignal::new(None::<String>);
    let users = LocalResource::new(move || {
        version.track();
        async move { get_json::<UserList>("/api/v1/users").await }
    });
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let me = use_me();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = NewUser {
            name: name.get_untracked(),
            role: role.get_untracked(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match send_json::<_, UserInfo>(Method::Post, "/api/v1/users", Some(&body)).await {
                Ok(_) => {
                    problem.set(None);
                    name.set(String::new());
                    password.set(String::new());
                    version.update(|v| *v += 1);
                }
                Err(e) => problem.set(Some(problem_text(&e))),
            }
        });
    };
    let act = move |method: Method, url: String| {
        spawn_local(async move {
            match send_json::<(), ()>(method, &url, None).await {
                Ok(()) => {
                    problem.set(None);
                    version.update(|v| *v += 1);
                }
                Err(e) => problem.set(Some(problem_text(&e))),
            }
        });
    };
    view! {
        <section class=PANEL aria-labelledby="users-heading">
            <h2 id="users-heading" class="text-lg font-semibold">"Users"</h2>
            <form class="mt-3 flex flex-wrap items-end gap-2" data-testid="user-form" on:submit=add>
                <label class="text-sm">"Name " <input class=INPUT name="name" required
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label class="text-sm">"Password " <input class=INPUT name="password" type="password" autocomplete="new-password" required
                    prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) /></label>
                <label class="text-sm">"Role " <select class=INPUT name="role"
                    on:change=move |ev| if let Ok(r) = event_target_value(&ev).parse() { role.set(r) }>{role_options(Role::Viewer)}</select></label>
                <button type="submit" class=PRIMARY>"Add user"</button>
            </form>
            {move || problem.get().map(|p| view! { <p role="alert" class="mt-2 text-sm text-red-600">{p}</p> })}
            <Suspense fallback=|| view! { <p class="mt-3 text-sm text-slate-500">"Loading…"</p> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <p class="mt-3 text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="mt-3 w-full text-sm" aria-label="Users">
                            <thead class="text-left text-xs uppercase text-slate-500">
                                <tr><th class="py-1">"Name"</th><th>"Role"</th><th>"Sessions"</th><th>"Actions"</th></tr>
                            </thead>
                            <tbody>
                                {list.users.into_iter().map(|u| {
                                    let id = u.id;
                                    let is_me = me.with_untracked(|m| m.as_ref().is_some_and(|m| m.name.eq_ignore_ascii_case(&u.name)));
                                    view! {
                                        <tr data-user=u.name.clone() class="border-t border-slate-100 dark:border-slate-800">
                                            <td class="py-1">{u.name.clone()}</td>
                                            <td>{u.role.as_str()}</td>
                                            <td>{u.sessions}</td>
                                            <td class="space-x-2">
                                                <button type="button" class=BUTTON
                                                    on:click=move |_| act(Method::Delete, format!("/api/v1/users/{id}/sessions"))>"End sessions"</button>
                                                {(!is_me).then(|| view! {
                                                    <button type="button" class=BUTTON
                                                        on:click=move |_| act(Method::Delete, format!("/api/v1/users/{id}"))>"Delete"</button>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let version = RwSignal::new(0u32);
    let problem = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<CreatedToken>);
    let tokens = LocalResource::new(move || {
        version.track();
        async move { get_json::<TokenList>("/api/v1/tokens").await }
    });
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = NewToken {
            name: name.get_untracked(),
            role: role.get_untracked(),
        };
        spawn_local(async move {
            match send_json::<_, CreatedToken>(Method::Post, "/api/v1/tokens", Some(&body)).await {
                Ok(token) => {
                    problem.set(None);
                    name.set(String::new());
                    created.set(Some(token));
                    version.update(|v| *v += 1);
                }
                Err(e) => problem.set(Some(problem_text(&e))),
            }
        });
    };
    let revoke = move |id: i64| {
        spawn_local(async move {
            match send_json::<(), ()>(Method::Delete, &format!("/api/v1/tokens/{id}"), None).await {
                Ok(()) => version.update(|v| *v += 1),
                Err(e) => problem.set(Some(problem_text(&e))),
            }
        });
    };
    view! {
        <section class=PANEL aria-labelledby="tokens-heading">
            <h2 id="tokens-heading" class="text-lg font-semibold">"API tokens"</h2>
            <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">
                "Scripts send a token as " <code>"Authorization: Bearer <token>"</code> "; it can do what its role can."
            </p>
            <form class="mt-3 flex flex-wrap items-end gap-2" data-testid="token-form" on:submit=create>
                <label class="text-sm">"Name " <input class=INPUT name="token-name" required
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label class="text-sm">"Role " <select class=INPUT name="token-role"
                    on:change=move |ev| if let Ok(r) = event_target_value(&ev).parse() { role.set(r) }>{role_options(Role::Viewer)}</select></label>
                <button type="submit" class=PRIMARY>"Create token"</button>
            </form>
            {move || created.get().map(|t| view! {
                <div role="status" data-testid="new-token" class="mt-3 rounded-md bg-amber-50 p-3 text-sm dark:bg-amber-950">
                    <p>"Copy the token now; it is not shown again:"</p>
                    <code class="block break-all font-mono">{t.secret}</code>
                </div>
            })}
            {move || problem.get().map(|p| view! { <p role="alert" class="mt-2 text-sm text-red-600">{p}</p> })}
            <Suspense fallback=|| view! { <p class="mt-3 text-sm text-slate-500">"Loading…"</p> }>
                {move || tokens.get().map(|r| match r {
                    Err(e) => view! { <p class="mt-3 text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="mt-3 w-full text-sm" aria-label="API tokens">
                            <thead class="text-left text-xs uppercase text-slate-500">
                                <tr><th class="py-1">"Name"</th><th>"Role"</th><th>"Created by"</th><th>"State"</th><th>"Actions"</th></tr>
                            </thead>
                            <tbody>
                                {list.tokens.into_iter().map(|t| {
                                    let id = t.id;
                                    let revoked = t.revoked_ms.is_some();
                                    view! {
                                        <tr data-token=t.name.clone() class="border-t border-slate-100 dark:border-slate-800">
                                            <td class="py-1">{t.name.clone()}</td>
                                            <td>{t.role.as_str()}</td>
                                            <td>{t.created_by.clone()}</td>
                                            <td>{if revoked { "revoked" } else if t.last_used_ms.is_some() { "used" } else { "unused" }}</td>
                                            <td>{(!revoked).then(|| view! {
                                                <button type="button" class=BUTTON on:click=move |_| revoke(id)>"Revoke"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// `/admin`: users and API tokens.
#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <Title text="Admin" />
        <PageHeader title="Admin" subtitle="Who can log in, and the tokens scripts use." />
        <div class="grid gap-6">
            <Users />
            <Tokens />
        </div>
    }
}
