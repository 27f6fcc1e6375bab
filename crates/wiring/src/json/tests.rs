use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn doc(text: &str) -> Document {
    Document::parse(text).unwrap()
}

#[test]
fn set_then_remove_gives_back_the_same_bytes() {
    let original = "{\n    \"a\": 1e2,\n    \"b\": \"\\u00e9\\\\ \\\"q\\\" €\",\n    \"n\": null,\n    \"big\": 123456789012345678901234567890\n}\n";
    let mut d = doc(original);
    d.set(&["ours"], &json!({"x": [1, 2]})).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(d.text()).unwrap()["ours"],
        json!({"x": [1, 2]})
    );
    assert!(d.text().starts_with("{\n    \"a\": 1e2,"), "{}", d.text());
    assert!(d.remove(&["ours"]));
    assert_eq!(d.text(), original);
}

#[test]
fn inserted_members_follow_the_file_style() {
    let mut d = doc("{\"a\":1}");
    d.set(&["b"], &json!({"c": true})).unwrap();
    assert_eq!(d.text(), "{\"a\":1,\"b\":{\"c\":true}}");

    let mut d = doc("{\r\n\t\"a\": 1\r\n}\r\n");
    d.set(&["b"], &json!({"c": true})).unwrap();
    assert_eq!(
        d.text(),
        "{\r\n\t\"a\": 1,\r\n\t\"b\": {\r\n\t  \"c\": true\r\n\t}\r\n}\r\n"
    );

    let mut d = doc("{}");
    d.set(&["b"], &json!("x")).unwrap();
    assert_eq!(d.text(), "{\n  \"b\": \"x\"\n}");
}

#[test]
fn nested_paths_are_created_and_kept() {
    let mut d = doc("{\n  \"env\": {\n    \"MINE\": \"1\"\n  }\n}\n");
    d.set(&["env", "OURS"], &json!("2")).unwrap();
    assert_eq!(
        d.text(),
        "{\n  \"env\": {\n    \"MINE\": \"1\",\n    \"OURS\": \"2\"\n  }\n}\n"
    );
    d.set(&["env", "OURS"], &json!("3")).unwrap();
    assert_eq!(d.value(&["env", "OURS"]), Some(json!("3")));
    let mut d = doc("{\"other\": 1}");
    d.set(&["env", "OURS"], &json!("2")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(d.text()).unwrap(),
        json!({"other": 1, "env": {"OURS": "2"}})
    );
    let mut d = doc("{\"env\": \"not an object\"}");
    assert_eq!(
        d.set(&["env", "OURS"], &json!("2")),
        Err(EditError::NotAnObject("env".into()))
    );
}

#[test]
fn removing_any_member_keeps_the_document_valid() {
    for index in 0..3 {
        let keys = ["a", "b", "c"];
        let mut d = doc("{ \"a\": 1, \"b\": [2], \"c\": {\"d\": 3} }");
        assert!(d.remove(&[keys[index]]));
        let parsed: Value = serde_json::from_str(d.text()).unwrap();
        assert_eq!(parsed.as_object().unwrap().len(), 2, "{}", d.text());
        assert!(parsed.get(keys[index]).is_none());
    }
    let mut d = doc("{\"only\": 1}");
    assert!(d.remove(&["only"]));
    assert_eq!(d.text(), "{}");
    assert!(!d.remove(&["absent"]));
}

#[test]
fn repeated_keys_read_the_last_and_remove_all() {
    let mut d = doc("{\"k\": 1, \"k\": 2}");
    assert_eq!(d.raw(&["k"]), Some("2"));
    d.set(&["k"], &json!(3)).unwrap();
    assert_eq!(d.text(), "{\"k\": 1, \"k\": 3}");
    assert!(d.remove(&["k"]));
    assert_eq!(d.text(), "{}");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let cases = [
        ("{\n  \"a\": 1,\n}", 3, 1),
        ("{\"a\": tru}", 1, 7),
        ("{\"a\": 01}", 1, 8),
        ("{\"a\": \"x\ny\"}", 1, 9),
        ("{\"é\": 1 2}", 1, 9),
        ("[1]", 1, 1),
        ("{} {}", 1, 4),
        ("{\"a\": [1, 2}", 1, 12),
        ("{\"a\": \"\\x\"}", 1, 9),
    ];
    for (text, line, column) in cases {
        let error = Document::parse(text).unwrap_err();
        assert_eq!(
            (error.line, error.column),
            (line, column),
            "{text:?}: {error}"
        );
    }
}

#[test]
fn deep_nesting_neither_overflows_nor_changes() {
    let depth = 200_000;
    let text = format!("{{\"deep\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    let mut d = doc(&text);
    d.set(&["ours"], &json!(1)).unwrap();
    assert!(d.remove(&["ours"]));
    assert_eq!(d.text(), text);
    let broken = format!(
        "{{\"deep\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth - 1)
    );
    assert!(Document::parse(&broken).is_err());
}

#[test]
fn byte_order_mark_and_empty_files() {
    let mut d = doc("\u{feff}{\"a\": 1}");
    d.set(&["b"], &json!(2)).unwrap();
    assert!(d.text().starts_with('\u{feff}'));
    let mut d = doc("  \n");
    d.set(&["b"], &json!(2)).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(d.text()).unwrap(),
        json!({"b": 2})
    );
}

#[test]
fn array_items_are_pushed_and_removed_in_place() {
    let original = "{\"entries\": [{\"id\": \"x\"}], \"z\": 1}";
    let mut d = doc(original);
    d.push_item(&["entries"], "{\"id\": \"y\"}").unwrap();
    assert_eq!(
        d.text(),
        "{\"entries\": [{\"id\": \"x\"},{\"id\":\"y\"}], \"z\": 1}"
    );
    assert!(d.remove_item(&["entries"], 1));
    assert_eq!(d.text(), original);
    let mut d = doc("{\"e\": [\n    1,\n    2\n]}");
    d.push_item(&["e"], "[\n  3\n]").unwrap();
    assert_eq!(
        d.text(),
        "{\"e\": [\n    1,\n    2,\n    [\n      3\n    ]\n]}"
    );
    assert!(d.remove_item(&["e"], 0));
    assert_eq!(
        serde_json::from_str::<Value>(d.text()).unwrap(),
        json!({"e": [2, [3]]})
    );
    let mut d = doc("{\"e\": []}");
    d.push_item(&["e"], "1").unwrap();
    assert!(d.remove_item(&["e"], 0));
    assert_eq!(d.text(), "{\"e\": []}");
    assert!(d.push_item(&["z"], "1").is_err());
}

/// Arbitrary JSON values (any strings, numbers, nesting).
pub(crate) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn accepts_what_serde_json_writes_and_edits_only_our_key(
        value in any_json(),
        pretty in any::<bool>(),
        key in "[a-zA-Z]{1,12}",
    ) {
        let mut object = serde_json::Map::new();
        object.insert("user".into(), value);
        let original = Value::Object(object);
        let text = if pretty {
            serde_json::to_string_pretty(&original).unwrap()
        } else {
            serde_json::to_string(&original).unwrap()
        };
        let mut d = Document::parse(&text).unwrap();
        let key = format!("moe_{key}");
        d.set(&[&key], &json!({"url": "http://127.0.0.1:1", "on": true})).unwrap();
        // serde_json's float parsing is not exact, so compare with the original text parsed.
        let mut expected: Value = serde_json::from_str(&text).unwrap();
        expected[&key] = json!({"url": "http://127.0.0.1:1", "on": true});
        prop_assert_eq!(serde_json::from_str::<Value>(d.text()).unwrap(), expected);
        prop_assert!(d.remove(&[&key]));
        prop_assert_eq!(d.text(), text.as_str());
    }

    #[test]
    fn never_panics_and_agrees_with_serde_json_on_validity(text in "[{}\\[\\]\":,0-9a-z\\\\ .eE+-]{0,40}") {
        let ours = Document::parse(&text);
        let theirs = serde_json::from_str::<Value>(&text);
        if let Ok(Value::Object(_)) = theirs {
            prop_assert!(ours.is_ok(), "{text:?}: {:?}", ours.err());
        } else if !text.trim().is_empty() {
            prop_assert!(ours.is_err(), "{text:?} accepted");
        }
    }
}
