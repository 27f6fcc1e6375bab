//! The tray menu as data: what it shows for a state ([`view`]) and what a click means
//! ([`route`]). Pure functions, unit-tested; `tray.rs` puts them on screen.

use std::net::SocketAddr;

/// The three profiles, in menu order (the gateway's own names).
pub const PROFILES: [&str; 3] = ["moe_native", "moe_reasoning", "moe_orchestrated"];

/// The two Claude clients the menu wires, with the wiring crate's target names.
pub const TARGETS: [(&str, &str); 2] = [
    ("claude-desktop", "Claude Desktop"),
    ("claude-code", "Claude Code"),
];

/// Menu item ids.
pub mod id {
    /// The status line.
    pub const STATUS: &str = "status";
    /// Why something needs the user (hidden text when nothing does).
    pub const ATTENTION: &str = "attention";
    /// Stop the `serve` holding our port and serve here.
    pub const TAKE_OVER: &str = "take-over";
    /// Prefix of the profile items (`profile:moe_native`…).
    pub const PROFILE: &str = "profile:";
    /// Prefix of the wire/restore items (`wire:claude-desktop`…).
    pub const WIRE: &str = "wire:";
    /// Copy the default key.
    pub const COPY_KEY: &str = "copy-key";
    /// Register a GGUF file.
    pub const ADD_MODEL: &str = "add-model";
    /// The dashboard window.
    pub const DASHBOARD: &str = "dashboard";
    /// The dashboard's log page.
    pub const LOGS: &str = "logs";
    /// Start at login.
    pub const AUTOSTART: &str = "autostart";
    /// Restore Claude's settings, then quit.
    pub const RESTORE_AND_QUIT: &str = "restore-and-quit";
    /// Quit.
    pub const QUIT: &str = "quit";
}

/// Who holds the port when we could not bind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortHolder {
    /// `moe-sovereign serve` of this user (its process id), which we can ask to stop.
    Serve(u32),
    /// Something else.
    Other,
}

/// The gateway inside the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gateway {
    /// Binding.
    Starting,
    /// Serving at this address.
    Serving(SocketAddr),
    /// The port is taken.
    PortTaken(SocketAddr, PortHolder),
    /// It could not start (the reason, one line).
    Failed(String),
    /// Quitting.
    Stopping,
}

/// What the model row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Model {
    /// Nothing registered.
    None,
    /// Registered, not in memory.
    OnDisk(String),
    /// Being loaded.
    Loading(String),
    /// In memory.
    Loaded(String),
    /// The last load failed.
    Failed(String),
}

/// Everything the menu shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayState {
    /// The gateway.
    pub gateway: Gateway,
    /// The model.
    pub model: Model,
    /// Requests in flight.
    pub open: usize,
    /// The default key's profile; `None` when there is no key.
    pub profile: Option<String>,
    /// Which of [`TARGETS`] are wired (same order).
    pub wired: [bool; 2],
    /// Whether the app is registered to start at login.
    pub autostart: bool,
    /// Something the user has to look at.
    pub attention: Option<String>,
}

impl Default for TrayState {
    fn default() -> Self {
        Self {
            gateway: Gateway::Starting,
            model: Model::None,
            open: 0,
            profile: None,
            wired: [false, false],
            autostart: false,
            attention: None,
        }
    }
}

/// What a click asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Bind the default key to this profile.
    SetProfile(String),
    /// Wire this Claude client (wiring target name).
    Wire(String),
    /// Undo the wiring of this client.
    Unwire(String),
    /// Put the default key on the clipboard.
    CopyKey,
    /// Pick a GGUF file and register it.
    AddModel,
    /// Show the dashboard.
    OpenDashboard,
    /// Show the log page.
    OpenLogs,
    /// Register (`true`) or unregister start at login.
    SetAutostart(bool),
    /// Ask the `serve` on our port to stop, then serve here.
    TakeOver,
    /// Stop everything and exit; first unwire Claude when `restore`.
    Quit {
        /// Put Claude's settings back first.
        restore: bool,
    },
}

/// What a click on item `id` means in `state`; `None` for rows that do nothing.
pub fn route(id: &str, state: &TrayState) -> Option<Action> {
    let serving = matches!(state.gateway, Gateway::Serving(_));
    if let Some(profile) = id.strip_prefix(id::PROFILE) {
        return (serving && state.profile.is_some() && PROFILES.contains(&profile))
            .then(|| Action::SetProfile(profile.to_owned()));
    }
    if let Some(target) = id.strip_prefix(id::WIRE) {
        let index = TARGETS.iter().position(|(name, _)| *name == target)?;
        if !serving {
            return None;
        }
        return Some(if state.wired[index] {
            Action::Unwire(target.to_owned())
        } else {
            Action::Wire(target.to_owned())
        });
    }
    match id {
        id::COPY_KEY => state.profile.is_some().then_some(Action::CopyKey),
        id::ADD_MODEL => serving.then_some(Action::AddModel),
        id::DASHBOARD => serving.then_some(Action::OpenDashboard),
        id::LOGS => serving.then_some(Action::OpenLogs),
        id::AUTOSTART => Some(Action::SetAutostart(!state.autostart)),
        id::TAKE_OVER => matches!(state.gateway, Gateway::PortTaken(_, PortHolder::Serve(_)))
            .then_some(Action::TakeOver),
        id::RESTORE_AND_QUIT => state
            .wired
            .iter()
            .any(|w| *w)
            .then_some(Action::Quit { restore: true }),
        id::QUIT => Some(Action::Quit { restore: false }),
        _ => None,
    }
}

/// One item as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    /// Its id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Clickable.
    pub enabled: bool,
    /// For check items: checked. `None` for plain items.
    pub checked: Option<bool>,
    /// Shown at all (muda cannot hide items: a hidden item is removed from the menu).
    pub visible: bool,
}

/// The status line: address, model state, open requests.
pub fn status_line(state: &TrayState) -> String {
    let model = match &state.model {
        Model::None => "no model yet".to_owned(),
        Model::OnDisk(name) => format!("{name} (on disk)"),
        Model::Loading(name) => format!("{name} loading…"),
        Model::Loaded(name) => format!("{name} loaded"),
        Model::Failed(name) => format!("{name} failed to load"),
    };
    match &state.gateway {
        Gateway::Starting => "Starting…".to_owned(),
        Gateway::Serving(addr) => {
            let open = match state.open {
                0 => "idle".to_owned(),
                1 => "1 request open".to_owned(),
                n => format!("{n} requests open"),
            };
            format!("Serving on {addr} · {model} · {open}")
        }
        Gateway::PortTaken(addr, PortHolder::Serve(pid)) => format!(
            "Port {} is taken by `moe-sovereign serve` (pid {pid})",
            addr.port()
        ),
        Gateway::PortTaken(addr, PortHolder::Other) => {
            format!("Port {} is taken by another program", addr.port())
        }
        Gateway::Failed(reason) => format!("Not serving: {reason}"),
        Gateway::Stopping => "Stopping…".to_owned(),
    }
}

/// Which tray icon fits the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// Nothing happening.
    Idle,
    /// Generating.
    Busy,
    /// Something needs the user (a broken Claude file, a failed model, not serving).
    Attention,
}

/// The icon for `state`.
pub fn icon(state: &TrayState) -> Icon {
    let failing = matches!(state.gateway, Gateway::PortTaken(..) | Gateway::Failed(_))
        || matches!(state.model, Model::Failed(_));
    if failing || state.attention.is_some() {
        Icon::Attention
    } else if state.open > 0 || matches!(state.model, Model::Loading(_)) {
        Icon::Busy
    } else {
        Icon::Idle
    }
}

/// Every item of the menu, in order (separators are `tray.rs`'s business).
pub fn view(state: &TrayState) -> Vec<ItemView> {
    let serving = matches!(state.gateway, Gateway::Serving(_));
    let wired = state.wired.iter().any(|w| *w);
    let item = |id: &str, label: String, enabled: bool| ItemView {
        id: id.to_owned(),
        label,
        enabled,
        checked: None,
        visible: true,
    };
    let mut items = vec![
        item(id::STATUS, status_line(state), false),
        ItemView {
            visible: state.attention.is_some(),
            ..item(
                id::ATTENTION,
                state.attention.clone().unwrap_or_default(),
                false,
            )
        },
        ItemView {
            visible: matches!(state.gateway, Gateway::PortTaken(_, PortHolder::Serve(_))),
            ..item(id::TAKE_OVER, "Take over from `serve`".into(), true)
        },
    ];
    for profile in PROFILES {
        items.push(ItemView {
            checked: Some(state.profile.as_deref() == Some(profile)),
            ..item(
                &format!("{}{profile}", id::PROFILE),
                format!("Profile: {profile}"),
                serving && state.profile.is_some(),
            )
        });
    }
    for (index, (target, title)) in TARGETS.iter().enumerate() {
        let label = if state.wired[index] {
            format!("Restore {title}")
        } else {
            format!("Wire {title}")
        };
        items.push(item(&format!("{}{target}", id::WIRE), label, serving));
    }
    items.push(item(
        id::COPY_KEY,
        "Copy API key".into(),
        state.profile.is_some(),
    ));
    items.push(item(id::ADD_MODEL, "Add model…".into(), serving));
    items.push(item(id::DASHBOARD, "Open dashboard".into(), serving));
    items.push(item(id::LOGS, "View logs".into(), serving));
    items.push(ItemView {
        checked: Some(state.autostart),
        ..item(id::AUTOSTART, "Start at login".into(), true)
    });
    items.push(ItemView {
        visible: wired,
        ..item(
            id::RESTORE_AND_QUIT,
            "Restore Claude's settings and quit".into(),
            true,
        )
    });
    items.push(item(
        id::QUIT,
        if wired {
            "Quit (Claude stays wired to this gateway)".into()
        } else {
            "Quit".into()
        },
        true,
    ));
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> TrayState {
        TrayState {
            gateway: Gateway::Serving("127.0.0.1:8742".parse().unwrap()),
            model: Model::Loaded("smollm2".into()),
            profile: Some("moe_native".into()),
            ..TrayState::default()
        }
    }

    fn find<'a>(items: &'a [ItemView], id: &str) -> &'a ItemView {
        items.iter().find(|i| i.id == id).unwrap()
    }

    #[test]
    fn exactly_one_profile_is_checked_and_it_is_the_real_one() {
        for profile in PROFILES {
            let state = TrayState {
                profile: Some(profile.into()),
                ..serving()
            };
            let checked: Vec<_> = view(&state)
                .into_iter()
                .filter(|i| i.id.starts_with(id::PROFILE) && i.checked == Some(true))
                .map(|i| i.id)
                .collect();
            assert_eq!(checked, vec![format!("profile:{profile}")]);
        }
        // No key: nothing checked, nothing clickable.
        let state = TrayState {
            profile: None,
            ..serving()
        };
        assert!(
            view(&state)
                .iter()
                .filter(|i| i.id.starts_with(id::PROFILE))
                .all(|i| i.checked == Some(false) && !i.enabled)
        );
        assert_eq!(route("profile:moe_reasoning", &state), None);
    }

    #[test]
    fn clicks_route_by_state() {
        let state = serving();
        assert_eq!(
            route("profile:moe_reasoning", &state),
            Some(Action::SetProfile("moe_reasoning".into()))
        );
        assert_eq!(route("profile:moe_bogus", &state), None);
        assert_eq!(
            route("wire:claude-desktop", &state),
            Some(Action::Wire("claude-desktop".into()))
        );
        let wired = TrayState {
            wired: [true, false],
            ..serving()
        };
        assert_eq!(
            route("wire:claude-desktop", &wired),
            Some(Action::Unwire("claude-desktop".into()))
        );
        assert_eq!(
            route("wire:claude-code", &wired),
            Some(Action::Wire("claude-code".into()))
        );
        assert_eq!(route("wire:claude-web", &wired), None);
        assert_eq!(route(id::COPY_KEY, &state), Some(Action::CopyKey));
        assert_eq!(route(id::ADD_MODEL, &state), Some(Action::AddModel));
        assert_eq!(route(id::DASHBOARD, &state), Some(Action::OpenDashboard));
        assert_eq!(route(id::LOGS, &state), Some(Action::OpenLogs));
        assert_eq!(
            route(id::AUTOSTART, &state),
            Some(Action::SetAutostart(true))
        );
        let autostart = TrayState {
            autostart: true,
            ..serving()
        };
        assert_eq!(
            route(id::AUTOSTART, &autostart),
            Some(Action::SetAutostart(false))
        );
        assert_eq!(
            route(id::QUIT, &state),
            Some(Action::Quit { restore: false })
        );
        assert_eq!(route(id::RESTORE_AND_QUIT, &state), None);
        assert_eq!(
            route(id::RESTORE_AND_QUIT, &wired),
            Some(Action::Quit { restore: true })
        );
        assert_eq!(route(id::STATUS, &state), None);
        assert_eq!(route(id::TAKE_OVER, &state), None);
        assert_eq!(route("nonsense", &state), None);
    }

    #[test]
    fn not_serving_leaves_only_what_still_works() {
        let taken = TrayState {
            gateway: Gateway::PortTaken("127.0.0.1:8742".parse().unwrap(), PortHolder::Serve(4242)),
            ..serving()
        };
        assert_eq!(route(id::TAKE_OVER, &taken), Some(Action::TakeOver));
        assert_eq!(route("profile:moe_reasoning", &taken), None);
        assert_eq!(route("wire:claude-code", &taken), None);
        assert_eq!(route(id::DASHBOARD, &taken), None);
        assert_eq!(
            route(id::QUIT, &taken),
            Some(Action::Quit { restore: false })
        );
        let items = view(&taken);
        assert!(find(&items, id::TAKE_OVER).visible);
        assert_eq!(
            find(&items, id::STATUS).label,
            "Port 8742 is taken by `moe-sovereign serve` (pid 4242)"
        );
        let other = TrayState {
            gateway: Gateway::PortTaken("127.0.0.1:8742".parse().unwrap(), PortHolder::Other),
            ..serving()
        };
        assert_eq!(route(id::TAKE_OVER, &other), None);
        assert!(!find(&view(&other), id::TAKE_OVER).visible);
        assert_eq!(icon(&other), Icon::Attention);
    }

    #[test]
    fn labels_follow_the_state() {
        let items = view(&serving());
        assert_eq!(
            find(&items, id::STATUS).label,
            "Serving on 127.0.0.1:8742 · smollm2 loaded · idle"
        );
        assert_eq!(
            find(&items, "wire:claude-desktop").label,
            "Wire Claude Desktop"
        );
        assert_eq!(find(&items, id::QUIT).label, "Quit");
        assert!(!find(&items, id::RESTORE_AND_QUIT).visible);
        let busy = TrayState {
            open: 2,
            wired: [true, true],
            ..serving()
        };
        let items = view(&busy);
        assert_eq!(
            find(&items, id::STATUS).label,
            "Serving on 127.0.0.1:8742 · smollm2 loaded · 2 requests open"
        );
        assert_eq!(
            find(&items, "wire:claude-code").label,
            "Restore Claude Code"
        );
        assert_eq!(
            find(&items, id::QUIT).label,
            "Quit (Claude stays wired to this gateway)"
        );
        assert!(find(&items, id::RESTORE_AND_QUIT).visible);
        assert_eq!(icon(&busy), Icon::Busy);
        assert_eq!(icon(&serving()), Icon::Idle);
        let broken = TrayState {
            attention: Some("Claude Desktop's config does not parse".into()),
            ..busy
        };
        assert_eq!(icon(&broken), Icon::Attention);
        assert!(find(&view(&broken), id::ATTENTION).visible);
    }
}
