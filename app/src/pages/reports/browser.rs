//! The Reports page's browser side (feature `hydrate`): JSON GETs for the metric list and the
//! estimate, and the streamed download. The download reads the response body chunk by chunk
//! (`ReadableStream` reader), reports bytes and rows as they arrive, keeps the chunks as JS
//! `Uint8Array`s (never copied into wasm memory for keeping), and saves them through a Blob URL
//! under the server's file name.

use super::form::{Progress, attachment_file_name, rows_from_lines};
use contract::api::{ApiErrorBody, ApiErrorDetail, ExportFormat};
use js_sys::{Array, Reflect, Uint8Array};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, HtmlAnchorElement, ReadableStreamDefaultReader, Response, Url,
};

/// A failure with nothing to name but the cause.
fn failure(message: impl Into<String>) -> ApiErrorDetail {
    ApiErrorDetail {
        field: None,
        message: message.into(),
    }
}

fn js_failure(context: &str, error: JsValue) -> ApiErrorDetail {
    let text = error
        .as_string()
        .or_else(|| {
            error
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{error:?}"));
    failure(format!("{context}: {text}"))
}

async fn fetch(url: &str) -> Result<Response, ApiErrorDetail> {
    let window = web_sys::window().ok_or_else(|| failure("no window"))?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| js_failure("the server did not answer", e))?;
    response
        .dyn_into::<Response>()
        .map_err(|e| js_failure("not a response", e))
}

async fn text(response: &Response) -> Result<String, ApiErrorDetail> {
    let promise = response
        .text()
        .map_err(|e| js_failure("unreadable body", e))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| js_failure("unreadable body", e))?
        .as_string()
        .ok_or_else(|| failure("the body is not text"))
}

/// A refused request's message: the API's `{"error": ...}` body, else the status line.
async fn refusal(response: &Response) -> ApiErrorDetail {
    let body = text(response).await.unwrap_or_default();
    serde_json::from_str::<ApiErrorBody>(&body)
        .map(|b| b.error)
        .unwrap_or_else(|_| {
            failure(format!(
                "the server answered {} {}",
                response.status(),
                response.status_text()
            ))
        })
}

/// GETs `url` and decodes its JSON body; a 4xx/5xx gives the API's error detail.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiErrorDetail> {
    let response = fetch(url).await?;
    if !response.ok() {
        return Err(refusal(&response).await);
    }
    let body = text(&response).await?;
    serde_json::from_str(&body).map_err(|e| failure(format!("unexpected answer: {e}")))
}

/// `datetime-local` value (UTC, minutes) for now minus `ago_ms`.
pub fn utc_input_value(ago_ms: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(js_sys::Date::now() - ago_ms));
    String::from(date.to_iso_string())
        .chars()
        .take(16)
        .collect()
}

/// What a finished download saved.
pub struct Saved {
    pub file_name: String,
    pub progress: Progress,
}

/// Streams `url` into a file called as the server says, calling `report` after every chunk.
/// Stops (and returns `Ok(None)`) when `cancelled()` turns true.
pub async fn download(
    url: &str,
    format: ExportFormat,
    report: impl Fn(Progress),
    cancelled: impl Fn() -> bool,
) -> Result<Option<Saved>, ApiErrorDetail> {
    let response = fetch(url).await?;
    if !response.ok() {
        return Err(refusal(&response).await);
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let expected_rows = header("x-export-rows").and_then(|v| v.parse::<u64>().ok());
    let file_name = header("content-disposition")
        .and_then(|d| attachment_file_name(&d))
        .unwrap_or_else(|| format!("streamboard-export.{}", format.extension()));
    let content_type = header("content-type").unwrap_or_default();
    let body = response
        .body()
        .ok_or_else(|| failure("the export has no body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let parts = Array::new();
    let mut progress = Progress {
        bytes: 0,
        rows: rows_from_lines(format, 0, false),
        expected_rows,
    };
    let mut line_ends = 0u64;
    report(progress.clone());
    loop {
        if cancelled() {
            let _ = JsFuture::from(reader.cancel()).await;
            return Ok(None);
        }
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| js_failure("the download broke off", e))?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|e| js_failure("unreadable chunk", e))?
            .unchecked_into();
        progress.bytes += u64::from(value.length());
        line_ends += value.to_vec().iter().filter(|b| **b == b'\n').count() as u64;
        progress.rows = rows_from_lines(format, line_ends, false);
        parts.push(&value);
        report(progress.clone());
    }
    progress.rows = rows_from_lines(format, line_ends, true);
    let options = BlobPropertyBag::new();
    options.set_type(&content_type);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| js_failure("could not build the file", e))?;
    save(&blob, &file_name)?;
    Ok(Some(Saved {
        file_name,
        progress,
    }))
}

/// Hands `blob` to the browser's download manager as `file_name`.
fn save(blob: &Blob, file_name: &str) -> Result<(), ApiErrorDetail> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| failure("no document"))?;
    let url = Url::create_object_url_with_blob(blob)
        .map_err(|e| js_failure("could not save the file", e))?;
    let anchor: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| js_failure("could not save the file", e))?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    // The download has started from the click; the URL may go once the browser has read it.
    leptos::prelude::set_timeout(
        move || {
            let _ = Url::revoke_object_url(&url);
        },
        std::time::Duration::from_secs(60),
    );
    Ok(())
}
