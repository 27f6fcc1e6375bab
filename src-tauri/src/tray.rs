//! The tray icon and its menu on screen: built from [`menu::view`], updated in place when only
//! labels, checks or enabled states change, rebuilt when an item appears or goes (muda cannot
//! hide items). Linux: StatusNotifierItem + dbusmenu through libayatana-appindicator.

use std::collections::HashMap;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

use crate::menu::{self, Icon, ItemView, TrayState};

/// The tray icon's id (on Linux its dbus path ends in `…_tray_app_main`).
pub const TRAY_ID: &str = "main";

const IDLE: &[u8] = include_bytes!("../../icons/tray/idle@2x.png");
const BUSY: &[u8] = include_bytes!("../../icons/tray/busy@2x.png");
const ATTENTION: &[u8] = include_bytes!("../../icons/tray/attention@2x.png");
#[cfg(target_os = "macos")]
const TEMPLATE: &[u8] = include_bytes!("../../icons/tray/macos-template@2x.png");

enum Handle {
    Plain(MenuItem<Wry>),
    Check(CheckMenuItem<Wry>),
}

/// The tray and the handles of the items it shows.
pub struct Tray {
    icon: TrayIcon<Wry>,
    items: HashMap<String, Handle>,
    shown: Vec<String>,
    current: Option<Icon>,
}

/// Which group an item belongs to; a separator goes between groups.
fn group(id: &str) -> u8 {
    match id {
        menu::id::STATUS | menu::id::ATTENTION | menu::id::TAKE_OVER => 0,
        _ if id.starts_with(menu::id::PROFILE) => 1,
        _ if id.starts_with(menu::id::WIRE) => 2,
        menu::id::COPY_KEY | menu::id::ADD_MODEL => 3,
        menu::id::DASHBOARD | menu::id::LOGS | menu::id::AUTOSTART => 4,
        _ => 5,
    }
}

fn image(icon: Icon) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match icon {
        Icon::Idle => IDLE,
        Icon::Busy => BUSY,
        Icon::Attention => ATTENTION,
    })
}

impl Tray {
    /// Creates the tray icon with the menu for `state`; clicks go to `on_click(id)`.
    pub fn new(
        app: &AppHandle,
        state: &TrayState,
        on_click: impl Fn(&AppHandle, &str) + Send + Sync + 'static,
    ) -> tauri::Result<Self> {
        let (menu, items, shown) = build(app, &menu::view(state))?;
        let builder = TrayIconBuilder::with_id(TRAY_ID)
            .tooltip("MoE Sovereign")
            .title("MoE Sovereign")
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(move |app, event| on_click(app, event.id().as_ref()));
        #[cfg(target_os = "macos")]
        let builder = builder
            .icon(Image::from_bytes(TEMPLATE)?)
            .icon_as_template(true);
        #[cfg(not(target_os = "macos"))]
        let builder = builder.icon(image(menu::icon(state))?);
        let icon = builder.build(app)?;
        Ok(Self {
            icon,
            items,
            shown,
            current: Some(menu::icon(state)),
        })
    }

    /// Shows `state`: the same items updated in place, or a new menu when the items changed.
    /// Check items are set to the real state after every click too (muda toggles them itself).
    pub fn show(&mut self, app: &AppHandle, state: &TrayState) -> tauri::Result<()> {
        let view = menu::view(state);
        let visible: Vec<String> = view
            .iter()
            .filter(|i| i.visible)
            .map(|i| i.id.clone())
            .collect();
        if visible == self.shown {
            for item in view.iter().filter(|i| i.visible) {
                match self.items.get(&item.id) {
                    Some(Handle::Plain(handle)) => {
                        if handle.text()? != item.label {
                            handle.set_text(&item.label)?;
                        }
                        if handle.is_enabled()? != item.enabled {
                            handle.set_enabled(item.enabled)?;
                        }
                    }
                    Some(Handle::Check(handle)) => {
                        if handle.text()? != item.label {
                            handle.set_text(&item.label)?;
                        }
                        if handle.is_enabled()? != item.enabled {
                            handle.set_enabled(item.enabled)?;
                        }
                        let checked = item.checked == Some(true);
                        if handle.is_checked()? != checked {
                            handle.set_checked(checked)?;
                        }
                    }
                    None => {}
                }
            }
        } else {
            let (menu, items, shown) = build(app, &view)?;
            self.icon.set_menu(Some(menu))?;
            self.items = items;
            self.shown = shown;
        }
        let icon = menu::icon(state);
        if self.current != Some(icon) {
            #[cfg(not(target_os = "macos"))]
            self.icon.set_icon(Some(image(icon)?))?;
            self.current = Some(icon);
        }
        Ok(())
    }
}

type Built = (Menu<Wry>, HashMap<String, Handle>, Vec<String>);

fn build(app: &AppHandle, view: &[ItemView]) -> tauri::Result<Built> {
    let mut items = HashMap::new();
    let mut shown = Vec::new();
    let mut entries: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    let mut last_group = None;
    for item in view.iter().filter(|i| i.visible) {
        let this_group = group(&item.id);
        if last_group.is_some_and(|g| g != this_group) {
            entries.push(Box::new(PredefinedMenuItem::separator(app)?));
        }
        last_group = Some(this_group);
        match item.checked {
            Some(checked) => {
                let handle = CheckMenuItem::with_id(
                    app,
                    &item.id,
                    &item.label,
                    item.enabled,
                    checked,
                    None::<&str>,
                )?;
                entries.push(Box::new(handle.clone()));
                items.insert(item.id.clone(), Handle::Check(handle));
            }
            None => {
                let handle =
                    MenuItem::with_id(app, &item.id, &item.label, item.enabled, None::<&str>)?;
                entries.push(Box::new(handle.clone()));
                items.insert(item.id.clone(), Handle::Plain(handle));
            }
        }
        shown.push(item.id.clone());
    }
    let refs: Vec<&dyn IsMenuItem<Wry>> = entries.iter().map(|e| e.as_ref()).collect();
    let menu = Menu::with_items(app, &refs)?;
    Ok((menu, items, shown))
}
