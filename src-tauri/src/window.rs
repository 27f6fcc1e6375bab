//! The dashboard window: the gateway's own `/ui`, signed in through a one-time login link the
//! app asks its in-process gateway for (no token step for the user). Closing it destroys the
//! webview (WebKit's memory goes back; the app stays in the tray); opening builds it again.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// The window's label.
pub const LABEL: &str = "main";

/// Shows the dashboard at `page` (`dashboard`, `logs`, `welcome`…), signed in with `login_url`
/// when a new window is needed; an open window is focused and sent to `page`.
pub fn show(app: &AppHandle, login_url: &str, page: &str) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(LABEL) {
        // Already signed in: only the page changes.
        let mut url = window.url()?;
        url.set_fragment(Some(&format!("/{page}")));
        if url.path().starts_with("/ui/") && url.path() != "/ui/login" {
            window.navigate(url)?;
        }
        window.unminimize()?;
        window.show()?;
        window.set_focus()?;
        return Ok(());
    }
    let url = login_url.replacen("/ui/login#", &format!("/ui/login?next={page}#"), 1);
    let url: tauri::Url = url
        .parse()
        .map_err(|e| tauri::Error::Io(std::io::Error::other(format!("{url}: {e}"))))?;
    WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("MoE Sovereign")
        .inner_size(1180.0, 800.0)
        .min_inner_size(640.0, 480.0)
        .focused(true)
        .build()?;
    Ok(())
}
