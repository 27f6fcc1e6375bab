//! `ui`: a one-time dashboard login link from the running gateway, opened in the browser.

use anyhow::{Context, bail};
use moe_sovereign_gateway::admin::SECRET_HEADER;
use moe_sovereign_runtime::Home;

pub fn ui(no_open: bool) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let Some(url) = home.live_url() else {
        bail!(
            "no gateway is running for {}: start one with `moe-sovereign serve` (or the tray app)",
            home.dir().display()
        );
    };
    let Some(secret) = home.read_admin_secret() else {
        bail!(
            "{} has no dashboard secret: the running gateway did not make one",
            home.dir().display()
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let link = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let response = client
            .post(format!("{url}/api/login-link"))
            .header(SECRET_HEADER, secret)
            .header("origin", url.as_str())
            .json(&serde_json::json!({}))
            .send()
            .await
            .with_context(|| format!("the gateway at {url} does not answer"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            bail!("the gateway refused a login link ({status}): {message}");
        }
        body["url"]
            .as_str()
            .map(str::to_owned)
            .context("the gateway's answer has no url")
    })?;
    if no_open {
        println!("{link}");
        return Ok(());
    }
    match open_in_browser(&link) {
        Ok(()) => {
            eprintln!("opened the dashboard in your browser (the link works once, for 60 seconds)");
            Ok(())
        }
        Err(error) => {
            eprintln!("could not open a browser ({error}); open this link (once, within 60 s):");
            println!("{link}");
            Ok(())
        }
    }
}

/// The platform's "open this URL" command; the URL goes as an argument, never through a shell.
fn open_in_browser(url: &str) -> std::io::Result<()> {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let status = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "opener exited with {status}"
        )))
    }
}
