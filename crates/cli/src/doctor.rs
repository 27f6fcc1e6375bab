//! `doctor`: prints the runtime's checks, one line each; non-zero exit when one failed.

use moe_sovereign_runtime::doctor::{self, Level};

pub fn doctor(json: bool) -> anyhow::Result<()> {
    let checks = doctor::run();
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let tag = match c.status {
                Level::Ok => "ok  ",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{tag}  {:<28} {}", c.check, c.detail);
        }
    }
    let failed = checks.iter().filter(|c| c.status == Level::Fail).count();
    if failed > 0 {
        anyhow::bail!("{failed} check(s) need your attention");
    }
    Ok(())
}
