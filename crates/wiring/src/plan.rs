//! What each target needs written, and how one file's changes are applied and undone.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::json::Document;
use crate::locate::{self, Env, Platform};
use crate::state::{FileState, Prior, fingerprint};
use crate::{Target, WiringError};

/// The id of our Claude Desktop third-party profile (`configLibrary/<id>.json`), fixed so
/// wiring again finds and updates the same profile.
pub const DESKTOP_PROFILE_ID: &str = "6d6f652d-736f-4076-8000-000000008742";
/// The name Claude Desktop shows for it.
pub const DESKTOP_PROFILE_NAME: &str = "MoE Sovereign";

/// What a wiring points Claude at.
#[derive(Debug, Clone)]
pub struct Params {
    /// The gateway's base URL, without `/v1`.
    pub url: String,
    /// The key whose value the credential helper prints.
    pub key_id: String,
    /// The key itself: only the seed's `thirdPartyInference` block (and, across WSL, the
    /// profile) holds it; everything else calls the credential helper.
    pub key: String,
    /// The executable Claude runs for a credential (no arguments).
    pub helper: PathBuf,
}

/// One thing we own in a JSON file.
#[derive(Debug, Clone)]
pub enum Change {
    /// Our value at `path`; undoing restores what was there, or sets `when_absent` (else
    /// removes the member) when nothing was.
    Set {
        path: Vec<String>,
        value: Value,
        when_absent: Option<Value>,
    },
    /// An object `{"id": id, …}` in the array at the top-level key `array`.
    Entry {
        array: String,
        id: String,
        value: Value,
    },
}

/// The changes for one file.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub path: PathBuf,
    pub changes: Vec<Change>,
}

fn set(path: &[&str], value: Value) -> Change {
    Change::Set {
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        value,
        when_absent: None,
    }
}

fn deployment_mode() -> Change {
    Change::Set {
        path: vec!["deploymentMode".into()],
        value: json!("3p"),
        when_absent: Some(json!("1p")),
    }
}

/// The files and changes for `target`.
pub fn plan(
    target: Target,
    platform: Platform,
    env: &Env,
    params: &Params,
) -> Result<Vec<FilePlan>, WiringError> {
    match target {
        Target::ClaudeCode => Ok(vec![FilePlan {
            path: locate::claude_code_settings(env)?,
            changes: vec![
                set(&["env", "ANTHROPIC_BASE_URL"], json!(params.url)),
                set(
                    &["env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"],
                    json!("1"),
                ),
                set(
                    &["env", "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"],
                    json!("1"),
                ),
                set(
                    &["apiKeyHelper"],
                    json!(shell_command(&params.helper, platform)),
                ),
            ],
        }]),
        Target::ClaudeDesktop => {
            let folders = locate::desktop_folders(platform, env)?;
            let mut files = Vec::new();
            for (i, folder) in folders.normal.iter().enumerate() {
                let mut changes = vec![deployment_mode()];
                if i == 0 {
                    changes.push(set(
                        &["thirdPartyInference"],
                        json!({"type": "gateway", "baseUrl": params.url, "apiKey": params.key}),
                    ));
                }
                files.push(FilePlan {
                    path: folder.join("claude_desktop_config.json"),
                    changes,
                });
            }
            for folder in &folders.third_party {
                let library = folder.join("configLibrary");
                files.push(FilePlan {
                    path: folder.join("claude_desktop_config.json"),
                    changes: vec![deployment_mode()],
                });
                files.push(FilePlan {
                    path: library.join(format!("{DESKTOP_PROFILE_ID}.json")),
                    changes: desktop_profile(platform, params),
                });
                files.push(FilePlan {
                    path: library.join("_meta.json"),
                    changes: vec![
                        set(&["appliedId"], json!(DESKTOP_PROFILE_ID)),
                        Change::Entry {
                            array: "entries".into(),
                            id: DESKTOP_PROFILE_ID.into(),
                            value: json!({"id": DESKTOP_PROFILE_ID, "name": DESKTOP_PROFILE_NAME}),
                        },
                    ],
                });
            }
            Ok(files)
        }
    }
}

/// Our third-party profile: the gateway, bearer auth, the credential helper (no key on disk),
/// telemetry off. Across WSL the Windows app cannot run a Linux helper, so the key goes in.
fn desktop_profile(platform: Platform, params: &Params) -> Vec<Change> {
    let credential = if platform == Platform::Wsl {
        set(&["inferenceGatewayApiKey"], json!(params.key))
    } else {
        set(
            &["inferenceCredentialHelper"],
            json!(params.helper.to_string_lossy()),
        )
    };
    vec![
        set(&["inferenceProvider"], json!("gateway")),
        set(&["inferenceGatewayBaseUrl"], json!(params.url)),
        set(&["inferenceGatewayAuthScheme"], json!("bearer")),
        credential,
        set(&["deploymentDisplayName"], json!(DESKTOP_PROFILE_NAME)),
        set(&["disableEssentialTelemetry"], json!(true)),
        set(&["disableNonessentialTelemetry"], json!(true)),
    ]
}

/// `helper` as a command line for Claude Code's `apiKeyHelper` (run through a shell).
fn shell_command(helper: &Path, platform: Platform) -> String {
    let path = helper.to_string_lossy();
    if platform == Platform::Windows {
        format!("\"{path}\"")
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

/// Whether every change is in place in `doc`.
pub fn applied(doc: &Document, changes: &[Change]) -> bool {
    changes.iter().all(|change| match change {
        Change::Set { path, value, .. } => doc.value(&strs(path)).as_ref() == Some(value),
        Change::Entry { array, id, value } => entries(doc, array).is_some_and(|items| {
            items
                .iter()
                .any(|(_, v)| v.get("id") == Some(&json!(id)) && v == value)
        }),
    })
}

/// Applies `changes` to `doc`, recording in `record` what each path held before (a path already
/// recorded keeps its first prior: that is the user's value).
pub fn apply(
    doc: &mut Document,
    changes: &[Change],
    record: &mut FileState,
    file: &Path,
) -> Result<(), WiringError> {
    for change in changes {
        match change {
            Change::Set {
                path,
                value,
                when_absent,
            } => {
                let keys = strs(path);
                record_empty_container(doc, record, path);
                // Objects created on the way are recorded too, so undoing removes them.
                for depth in 1..=keys.len() {
                    let prefix = &keys[..depth];
                    let raw = doc.raw(prefix).map(str::to_owned);
                    let absent = raw.is_none();
                    let recorded = record.priors.iter().any(|p| p.path == path[..depth]);
                    if !recorded && (depth == keys.len() || absent) {
                        record.priors.push(Prior {
                            path: path[..depth].to_vec(),
                            raw,
                            ours: None,
                            fallback: None,
                            entry_id: None,
                        });
                    }
                    if absent && depth < keys.len() {
                        if !record.priors.iter().any(|p| &p.path == path) {
                            record.priors.push(Prior {
                                path: path.clone(),
                                raw: None,
                                ours: None,
                                fallback: None,
                                entry_id: None,
                            });
                        }
                        break;
                    }
                }
                if let Some(prior) = record.priors.iter_mut().find(|p| &p.path == path) {
                    prior.ours = Some(fingerprint(value));
                    prior.fallback.clone_from(when_absent);
                }
                doc.set(&keys, value)
                    .map_err(|e| WiringError::shape(file, e))?;
            }
            Change::Entry { array, id, value } => {
                let items = match doc.node(&[array]) {
                    None => Vec::new(),
                    Some(_) => entries(doc, array).ok_or_else(|| {
                        WiringError::shape(
                            file,
                            crate::json::EditError::NotAnObject(format!("{array} (an array)")),
                        )
                    })?,
                };
                record_empty_container(doc, record, std::slice::from_ref(array));
                if !record.priors.iter().any(|p| p.path == [array.clone()]) {
                    record.priors.push(Prior {
                        path: vec![array.clone()],
                        raw: doc.raw(&[array]).map(str::to_owned),
                        ours: None,
                        fallback: None,
                        entry_id: Some(id.clone()),
                    });
                }
                // In place already: exactly one entry with our id, equal to ours.
                let with_our_id: Vec<&Value> = items
                    .iter()
                    .map(|(_, v)| v)
                    .filter(|v| v.get("id") == Some(&json!(id)))
                    .collect();
                let already = with_our_id == [value];
                if !already {
                    if doc.node(&[array]).is_none() {
                        doc.set_raw(&[array], "[]")
                            .map_err(|e| WiringError::shape(file, e))?;
                    }
                    for index in (0..items.len()).rev() {
                        if items[index].1.get("id") == Some(&json!(id)) {
                            doc.remove_item(&[array], index);
                        }
                    }
                    let raw = serde_json::to_string_pretty(value).unwrap_or_default();
                    doc.push_item(&[array], &raw)
                        .map_err(|e| WiringError::shape(file, e))?;
                }
            }
        }
    }
    Ok(())
}

/// Undoes what `record` says we did: a value still ours gets its prior back (or the change's
/// `when_absent`, or goes away); one the user changed since stays. Objects we created and left
/// empty go away; our array entries go away.
pub fn revert(doc: &mut Document, record: &FileState, file: &Path) -> Result<(), WiringError> {
    for prior in record.priors.iter().rev() {
        let keys = strs(&prior.path);
        if let Some(id) = &prior.entry_id {
            if let Some(items) = entries(doc, &prior.path[0]) {
                let ours: Vec<usize> = (0..items.len())
                    .filter(|&i| items[i].1.get("id") == Some(&json!(id)))
                    .collect();
                for &index in ours.iter().rev() {
                    doc.remove_item(&keys, index);
                }
                if ours.len() == items.len() {
                    match &prior.raw {
                        None => {
                            doc.remove(&keys);
                        }
                        // An array that was empty: its own text back (`[ ]`, `[\n]`).
                        Some(raw) if serde_json::from_str::<Value>(raw).ok() == Some(json!([])) => {
                            doc.restore_raw(&keys, raw)
                                .map_err(|e| WiringError::shape(file, e))?;
                        }
                        Some(_) => {}
                    }
                }
            }
            continue;
        }
        let Some(ours) = &prior.ours else {
            let empty = doc
                .node(&keys)
                .and_then(|n| n.members())
                .is_some_and(<[_]>::is_empty);
            match &prior.raw {
                // An object created on the way: remove it once nothing is left in it.
                None if empty => {
                    doc.remove(&keys);
                }
                // An object that was empty before we added to it: its own text back once
                // nothing is left in it (adding replaced the whitespace inside it).
                Some(raw) if empty => doc
                    .restore_raw(&keys, raw)
                    .map_err(|e| WiringError::shape(file, e))?,
                _ => {}
            }
            continue;
        };
        let still_ours = doc
            .value(&keys)
            .is_some_and(|current| &fingerprint(&current) == ours);
        if !still_ours {
            continue;
        }
        match &prior.raw {
            Some(raw) => doc
                .restore_raw(&keys, raw)
                .map_err(|e| WiringError::shape(file, e))?,
            None => match &prior.fallback {
                Some(value) => doc
                    .set(&keys, value)
                    .map_err(|e| WiringError::shape(file, e))?,
                None => {
                    doc.remove(&keys);
                }
            },
        }
    }
    Ok(())
}

/// Before a member is added at `path`: when the object it goes into has no members, adding one
/// replaces the whitespace inside it (`{ }`, `{\n}`), so its text is recorded (a prior with a
/// `raw` and no `ours`) and undoing puts it back once the object is empty again.
fn record_empty_container(doc: &Document, record: &mut FileState, path: &[String]) {
    let keys = strs(path);
    let Some(absent) = (1..=keys.len()).find(|&depth| doc.node(&keys[..depth]).is_none()) else {
        return;
    };
    let container = &path[..absent - 1];
    let Some(raw) = doc.raw(&keys[..absent - 1]) else {
        return;
    };
    let empty = doc
        .node(&keys[..absent - 1])
        .and_then(|n| n.members())
        .is_some_and(<[_]>::is_empty);
    if empty && raw != "{}" && !record.priors.iter().any(|p| p.path == container) {
        record.priors.push(Prior {
            path: container.to_vec(),
            raw: Some(raw.to_owned()),
            ours: None,
            fallback: None,
            entry_id: None,
        });
    }
}

/// The items of the top-level array `key` as (raw text, parsed value); `None` when it is not an
/// array.
fn entries(doc: &Document, key: &str) -> Option<Vec<(String, Value)>> {
    let node = doc.node(&[key])?;
    let crate::json::Kind::Array(items) = &node.kind else {
        return None;
    };
    Some(
        items
            .iter()
            .map(|item| {
                let raw = doc.text()[item.span.clone()].to_owned();
                let value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                (raw, value)
            })
            .collect(),
    )
}

fn strs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}
