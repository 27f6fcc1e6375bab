//! Crashes in the middle of a write lose nothing: `kill -9` at random points of `wire`,
//! `unwire`, `keys create` and `models add` (240 kills) leaves every file either as it was or as
//! it became — and parseable — and the temp files of an interrupted write are cleaned up by the
//! next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use moe_sovereign_e2e::Gateway;
use moe_sovereign_e2e::gateway::binary;
use moe_sovereign_e2e::tools::smollm2;
use serde_json::Value;

/// A small deterministic generator (xorshift), seeded and printed so that a failure can be
/// replayed with `FAULT_SEED`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn parse(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} does not parse after a kill: {e}\n{text}",
            path.display()
        )
    }))
}

/// Every file under `dir` whose name looks like an unfinished write of ours.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                found.push(path);
            }
        }
    }
    found
}

/// Makes `files` look two minutes old: temp files younger than a minute may belong to a writer
/// still at work, so only older ones are swept.
fn age(files: &[PathBuf]) {
    let past = SystemTime::now() - Duration::from_secs(120);
    for file in files {
        let f = std::fs::File::options().write(true).open(file).unwrap();
        f.set_modified(past).unwrap();
    }
}

/// The commands interrupted: wire, unwire, keys create, models add (as `name`).
fn op_args<'a>(op: usize, model: &'a str, name: &'a str) -> Vec<&'a str> {
    match op {
        0 => vec!["wire", "claude-code"],
        1 => vec!["unwire", "claude-code"],
        2 => vec!["keys", "create", "--profile", "moe_native"],
        _ => vec!["models", "add", model, "--name", name],
    }
}

#[test]
fn kill_9_during_writes_leaves_old_or_new_files_and_no_litter() {
    let user = tempfile::tempdir().unwrap();
    let settings = user.path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original =
        "{\n  \"theme\": \"dark\",\n  \"permissions\": { \"allow\": [\"Bash(ls:*)\"] }\n}\n";
    std::fs::write(&settings, original).unwrap();
    let (home, _key) = Gateway::home("", "moe_native");
    let user_path = user.path().to_str().unwrap().to_owned();
    let env = [
        (
            "MOE_SOVEREIGN_HOME",
            home.path().to_str().unwrap().to_owned(),
        ),
        ("HOME", user_path.clone()),
        ("XDG_CONFIG_HOME", format!("{user_path}/.config")),
        ("CLAUDE_CONFIG_DIR", format!("{user_path}/.claude")),
        ("MOE_SOVEREIGN_PLATFORM", "linux".to_owned()),
    ];
    let run = |args: &[&str]| {
        let mut command = Command::new(binary());
        command.args(args);
        for (k, v) in &env {
            command.env(k, v);
        }
        command
    };
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("FAULT_SEED={seed}");
    let mut rng = Rng(seed);
    let model = smollm2();
    let model = model.to_str().unwrap();
    let keys_file = home.path().join("keys.json");
    let models_file = home.path().join("models.json");
    // How long each command takes here, measured by running it once to its end: the kills
    // land at random points within that.
    let mut took = [0u64; 4];
    for (op, slot) in took.iter_mut().enumerate() {
        let name = format!("warmup{op}");
        let start = Instant::now();
        let out = run(&op_args(op, model, &name)).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        *slot = u64::try_from(start.elapsed().as_millis()).unwrap().max(1);
    }
    eprintln!("wire, unwire, keys create, models add take {took:?} ms");
    let (mut killed, mut finished) = (0, 0);
    let start = Instant::now();
    for i in 0..2000 {
        if killed >= 240 {
            break;
        }
        let name = format!("m{i}");
        let op = [0, 1, 2, 0, 1, 2, 2, 3][i % 8];
        let args = op_args(op, model, &name);
        let window_ms = took[op];
        let keys_before = parse(&keys_file).map(|v| v["keys"].as_array().map_or(0, Vec::len));
        let mut child = run(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(window_ms)));
        match child.try_wait().unwrap() {
            Some(_) => finished += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
            }
        }
        child.wait().unwrap();

        // Claude Code's settings: the user's own content either way, wired or not.
        let now = parse(&settings).expect("settings.json vanished");
        assert_eq!(now["theme"], "dark", "the user's setting was lost: {now}");
        assert_eq!(now["permissions"]["allow"][0], "Bash(ls:*)", "{now}");
        let wired = now["env"]["ANTHROPIC_BASE_URL"].is_string();
        if !wired {
            assert!(
                now.get("apiKeyHelper").is_none(),
                "half wired: a helper without the URL: {now}"
            );
        }
        // keys.json: the keys it had, or one more.
        let keys = parse(&keys_file).expect("keys.json vanished");
        let count = keys["keys"].as_array().map_or(0, Vec::len);
        if let Some(before) = keys_before {
            assert!(
                count == before || count == before + 1,
                "{before} keys became {count}"
            );
        }
        // The model registry and the wiring record parse (checked by `parse`).
        if let Some(models) = parse(&models_file) {
            for entry in models["models"].as_array().into_iter().flatten() {
                if let Some(copy) = entry["engine_path"].as_str() {
                    assert!(
                        Path::new(copy).exists(),
                        "a registered model's converted copy is missing: {entry}"
                    );
                }
            }
        }
        parse(&home.path().join("wiring.json"));
    }
    eprintln!(
        "{killed} killed, {finished} finished before their kill, in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        killed >= 200,
        "only {killed} kills landed in {finished} runs"
    );

    // What was left half-written is cleaned up by the next complete run of each command (once
    // old enough not to be someone else's write in progress).
    let home_litter = temp_files(home.path());
    let user_litter = temp_files(user.path());
    eprintln!(
        "left by the kills: {} temp files in the home, {} beside Claude's files",
        home_litter.len(),
        user_litter.len()
    );
    age(&home_litter);
    age(&user_litter);
    let converted = home.path().join("models/converted");
    let copies: Vec<PathBuf> = std::fs::read_dir(&converted)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    age(&copies);
    for args in [
        vec!["wire", "claude-code"],
        vec!["unwire", "claude-code"],
        vec!["keys", "create", "--profile", "moe_native"],
        vec!["models", "add", model, "--name", "last"],
    ] {
        let out = run(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed after the kills: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The state is whole: the last wire/unwire round trip gave the user's file back.
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), original);
    let left: Vec<PathBuf> = temp_files(home.path())
        .into_iter()
        .chain(temp_files(user.path()))
        .collect();
    assert!(left.is_empty(), "temp files nobody cleans: {left:#?}");
    // Converted copies nobody registered (a kill between the copy and the registry) go too.
    let models = parse(&models_file).unwrap();
    let registered: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["engine_path"].as_str())
        .collect();
    for entry in std::fs::read_dir(&converted)
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        assert!(
            registered.contains(&path.to_str().unwrap()),
            "an unregistered converted copy is left: {}",
            path.display()
        );
    }
}
