//! Function mode, through every front end: the cipher example's functions
//! called over HTTP with JSON, every WIT type family both ways, each bad input's
//! answer, the description at `GET /`, the log capability and the limits.

use std::path::PathBuf;

use rvm_e2e::http::{Response, get, request};
use rvm_e2e::{AppSpec, Frontend, Served, TempDir, each_frontend};
use serde_json::{Value, json};

const KINDS: &str = "/rvm:cipher/kinds@0.1.0";

fn post(served: &dyn Served, path: &str, body: &str) -> Response {
    request(served.addr(), "POST", path, &[], body.as_bytes())
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Calls `function` of `kinds` with `args`; its result, which must be a 200.
fn call(served: &dyn Served, function: &str, args: Value) -> Value {
    let response = post(served, &format!("{KINDS}/{function}"), &args.to_string());
    assert_eq!(
        response.status,
        200,
        "{function}({args}): {}",
        response.text()
    );
    assert_eq!(
        response.header("content-type"),
        Some(&b"application/json"[..])
    );
    json_of(&response)
}

#[test]
fn every_wit_type_family_maps_both_ways() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("cipher"));
        let s = served.as_ref();
        // Every integer type at an end of its range; the 64-bit ones sent as
        // strings, which JSON numbers do not hold exactly in every client.
        let widest = json!([
            -128,
            255,
            i16::MIN,
            u16::MAX,
            i32::MIN,
            u32::MAX,
            i64::MIN,
            u64::MAX
        ]);
        let mut widest_as_strings = widest.clone();
        for i in [6, 7] {
            widest_as_strings[i] = Value::String(widest[i].to_string());
        }
        for (function, args, result) in [
            ("not", json!([true]), json!(false)),
            ("not", json!({"value": false}), json!(true)),
            ("integers", widest_as_strings, widest),
            ("halve", json!([5, 3]), json!([2.5, 1.5])),
            ("halve", json!([0.4, 0.2]), json!([0.2, 0.1])),
            (
                "halve",
                json!(["Infinity", "NaN"]),
                json!(["Infinity", "NaN"]),
            ),
            (
                "halve",
                json!(["-Infinity", -1]),
                json!(["-Infinity", -0.5]),
            ),
            ("next-char", json!(["a"]), json!("b")),
            ("next-char", json!(["é"]), json!("ê")),
            ("shout", json!(["grüße"]), json!("GRÜSSE")),
            ("reverse-bytes", json!([[1, 2, 3]]), json!([3, 2, 1])),
            ("reverse-bytes", json!(["AQID"]), json!([3, 2, 1])),
            ("sort", json!([[3, -1, 2]]), json!([-1, 2, 3])),
            (
                "mirror",
                json!([{"x": 1, "y": -2}]),
                json!({"x": -1, "y": 2}),
            ),
            ("grow", json!([{"circle": 1.5}]), json!({"circle": 3.0})),
            ("grow", json!(["dot"]), json!({"circle": 1.0})),
            ("next-color", json!(["blue"]), json!("red")),
            ("find", json!([["a", "b"], "b"]), json!(1)),
            ("find", json!([["a"], "z"]), Value::Null),
            ("parse", json!(["42"]), json!({"ok": 42})),
            (
                "parse",
                json!(["x"]),
                json!({"err": "\"x\": invalid digit found in string"}),
            ),
            ("toggle-write", json!([["read"]]), json!(["read", "write"])),
            (
                "toggle-write",
                json!([["write", "execute"]]),
                json!(["execute"]),
            ),
            ("nothing", json!([]), Value::Null),
        ] {
            assert_eq!(
                call(s, function, args.clone()),
                result,
                "{function}({args})"
            );
        }
        // list<u8> as base64 when asked; a function without parameters takes no body.
        let response = post(
            s,
            &format!("{KINDS}/reverse-bytes?bytes=base64"),
            "[[1,2,3]]",
        );
        assert_eq!(json_of(&response), json!("AwIB"));
        let response = post(s, &format!("{KINDS}/sort?bytes=base64"), "[[]]");
        assert_eq!(json_of(&response), json!([]), "only list<u8> is base64");
        assert_eq!(post(s, &format!("{KINDS}/nothing"), "").status, 200);
    });
}

#[test]
fn a_caesar_shift_from_the_environment_and_each_call_in_the_log() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("cipher").env("RVM_ENV_SHIFT_AMOUNT", "5");
        let served = frontend.start(&app);
        let s = served.as_ref();
        let secret = post(s, "/encrypt", r#"{"message": "hello world"}"#);
        assert_eq!(json_of(&secret), json!("mjqqt btwqi"));
        let plain = post(s, "/decrypt", r#"["mjqqt btwqi"]"#);
        assert_eq!(json_of(&plain), json!("hello world"));
        let line = served
            .logs()
            .wait_for(&["audit", "action=encrypt", "11 characters, shift 5"]);
        assert!(line.contains("app="), "{line}");
        served
            .logs()
            .wait_for(&["request served", "path=/decrypt", "status=200"]);
    });
    // The default shift is 3, as in the example this comes from.
    let served = rvm_e2e::RvmServe.start(&AppSpec::guest("cipher"));
    let secret = post(served.as_ref(), "/encrypt", r#"{"message": "hello world"}"#);
    assert_eq!(json_of(&secret), json!("khoor zruog"));
}

#[test]
fn bad_calls_get_a_precise_answer_and_the_next_call_is_served() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("cipher"));
        let s = served.as_ref();
        let mirror = format!("{KINDS}/mirror");
        let integers = format!("{KINDS}/integers");
        let counter = format!("{KINDS}/make-counter");
        for (method, path, body, status, says) in [
            (
                "POST",
                mirror.as_str(),
                "{\"p\": {\"x\": 1",
                400,
                "not valid JSON",
            ),
            (
                "POST",
                &mirror,
                "{}",
                400,
                "parameter `p` (record { x: s32, y: s32 }) is missing",
            ),
            (
                "POST",
                &mirror,
                r#"{"p": {"x": 1, "y": 2}, "q": 3}"#,
                400,
                "no parameter `q`",
            ),
            (
                "POST",
                &mirror,
                r#"[{"x": 1, "y": 2}, 3]"#,
                400,
                "expected 1 arguments (p), got 2",
            ),
            (
                "POST",
                &mirror,
                r#"{"p": {"x": 1}}"#,
                400,
                "parameter `p`: field `y` is missing",
            ),
            (
                "POST",
                &mirror,
                r#"{"p": {"x": "one", "y": 2}}"#,
                400,
                "parameter `p`: .x: expected s32",
            ),
            (
                "POST",
                &mirror,
                "7",
                400,
                "an object of the parameters by name or an array",
            ),
            (
                "POST",
                &integers,
                "[128,0,0,0,0,0,0,0]",
                400,
                "parameter `a`: expected s8 (-128 to 127), got 128",
            ),
            (
                "POST",
                &integers,
                "[0,0,0,0,0,0,0,-1]",
                400,
                "parameter `h`: expected u64",
            ),
            (
                "POST",
                &format!("{KINDS}/next-char"),
                r#"["ab"]"#,
                400,
                "expected char",
            ),
            (
                "POST",
                &format!("{KINDS}/halve"),
                "[1, 1e39]",
                400,
                "parameter `y`: expected f32, got 1e+39 (beyond its range)",
            ),
            ("POST", "/", "[]", 405, "GET / describes the functions"),
            (
                "POST",
                &format!("{KINDS}/next-color"),
                r#"["mauve"]"#,
                400,
                "expected enum { red, green, blue }",
            ),
            (
                "POST",
                &format!("{KINDS}/grow"),
                r#"[{"triangle": 1}]"#,
                400,
                "no case `triangle`",
            ),
            (
                "POST",
                &format!("{KINDS}/toggle-write"),
                r#"[["fly"]]"#,
                400,
                "expected a flag of flags { read, write, execute }",
            ),
            (
                "POST",
                &format!("{KINDS}/nope"),
                "[]",
                404,
                "no function at",
            ),
            ("POST", "/nope", "[]", 404, "GET / lists them"),
            ("GET", &mirror, "", 405, "is called with POST, not GET"),
            ("PUT", "/encrypt", "[\"a\"]", 405, "is called with POST"),
            ("POST", &counter, "[]", 501, "own<resource> is a resource"),
        ] {
            let response = request(s.addr(), method, path, &[], body.as_bytes());
            let text = response.text();
            assert_eq!(response.status, status, "{method} {path} {body}: {text}");
            let error = json_of(&response)["error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(error.contains(says), "{method} {path} {body}: {text}");
            if status == 405 {
                let allow = if path == "/" { "GET, HEAD" } else { "POST" };
                assert_eq!(response.header("allow"), Some(allow.as_bytes()));
            }
        }
        served
            .logs()
            .wait_for(&["request failed", "status=501", "is a resource"]);
        assert_eq!(call(s, "not", json!([true])), json!(false));
    });
}

#[test]
fn get_root_describes_every_function() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("cipher"));
        let response = get(served.addr(), "/");
        assert_eq!(response.status, 200);
        let description = json_of(&response);
        let functions = description["functions"].as_array().expect("a list");
        let find = |path: &str| {
            functions
                .iter()
                .find(|f| f["path"] == path)
                .unwrap_or_else(|| panic!("{path} is not described: {description}"))
        };
        assert_eq!(
            find("/encrypt"),
            &json!({"path": "/encrypt", "method": "POST",
                    "params": [{"name": "message", "type": "string"}], "result": "string"})
        );
        let grow = find(&format!("{KINDS}/grow"));
        assert_eq!(
            grow["params"][0]["type"],
            "variant { circle(f64), square(f64), dot }"
        );
        assert_eq!(
            find(&format!("{KINDS}/parse"))["result"],
            "result<s64, string>"
        );
        assert_eq!(find(&format!("{KINDS}/nothing"))["result"], Value::Null);
        let counter = find(&format!("{KINDS}/make-counter"));
        assert!(
            counter["unavailable"]
                .as_str()
                .unwrap()
                .contains("resource"),
            "{counter}"
        );
        assert!(find(&format!("{KINDS}/find"))["unavailable"].is_null());
    });
}

#[test]
fn traps_and_the_fuel_memory_time_and_size_limits_hold_for_calls() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("cipher")
            .env("RVM_FUEL", "5000000")
            .env("RVM_MAX_MEMORY", "32MiB")
            .env("RVM_MAX_ARGS_SIZE", "1KiB")
            .env("RVM_FUEL_HEADERS", "1");
        let served = frontend.start(&app);
        let s = served.as_ref();
        let spin = post(s, &format!("{KINDS}/spin"), "[100000000]");
        assert_eq!(spin.status, 500, "{}", spin.text());
        assert!(spin.text().contains("fuel"), "{}", spin.text());
        served.logs().wait_for(&[
            "request failed",
            "fuel budget of 5000000 exhausted",
            "RVM_FUEL",
        ]);

        let hoard = post(s, &format!("{KINDS}/hoard"), "[64]");
        assert_eq!(hoard.status, 500, "{}", hoard.text());
        assert!(hoard.text().contains("memory limit"), "{}", hoard.text());

        let trap = post(s, &format!("{KINDS}/fail"), r#"["on purpose"]"#);
        assert_eq!(trap.status, 500, "{}", trap.text());
        assert!(trap.text().contains("trap"), "{}", trap.text());
        served
            .logs()
            .wait_for(&["request failed", "status=500", "guest trapped"]);

        let large = format!("[\"{}\"]", "a".repeat(2048));
        let refused = post(s, "/encrypt", &large);
        assert_eq!(refused.status, 413, "{}", refused.text());
        assert!(refused.text().contains("1KiB"), "{}", refused.text());

        let fine = post(s, &format!("{KINDS}/spin"), "[10]");
        assert_eq!(fine.status, 200, "{}", fine.text());
        let consumed: u64 = String::from_utf8_lossy(fine.header("x-rvm-fuel-consumed").unwrap())
            .parse()
            .unwrap();
        assert!(consumed > 0 && consumed < 5_000_000, "{consumed}");
    });
    each_frontend(|frontend| {
        let app = AppSpec::guest("cipher")
            .env("RVM_FUEL", "0")
            .env("RVM_TIMEOUT", "300ms");
        let served = frontend.start(&app);
        let spin = post(
            served.as_ref(),
            &format!("{KINDS}/spin"),
            "[\"18446744073709551615\"]",
        );
        assert_eq!(spin.status, 504, "{}", spin.text());
        served
            .logs()
            .wait_for(&["request failed", "wall-clock limit of 300ms"]);
        assert_eq!(call(served.as_ref(), "not", json!([false])), json!(true));
    });
}

/// A component of someone else's world: it imports `acme:trail/log@1.0.0`'s
/// `record(event: string)` and exports `run`, which records "deployed".
fn trail_component(dir: &TempDir) -> PathBuf {
    let wasm = wat::parse_str(
        r#"(component
            (import "acme:trail/log@1.0.0" (instance $trail
                (export "record" (func (param "event" string)))))
            (core module $Memory (memory (export "memory") 1))
            (core instance $memory (instantiate $Memory))
            (alias core export $memory "memory" (core memory $mem))
            (alias export $trail "record" (func $record))
            (core func $record_lowered (canon lower (func $record) (memory $mem)))
            (core module $Main
                (import "env" "memory" (memory 1))
                (import "trail" "record" (func $record (param i32 i32)))
                (data (i32.const 16) "deployed")
                (func (export "run") (call $record (i32.const 16) (i32.const 8))))
            (core instance $main (instantiate $Main
                (with "env" (instance (export "memory" (memory $mem))))
                (with "trail" (instance (export "record" (func $record_lowered))))))
            (func (export "run") (canon lift (core func $main "run"))))"#,
    )
    .expect("valid component text");
    let path = dir.path().join("trail.wasm");
    std::fs::write(&path, wasm).unwrap();
    path
}

#[test]
fn an_imported_function_bound_to_the_log_writes_a_line() {
    let dir = TempDir::new("trail");
    let component = trail_component(&dir);
    each_frontend(|frontend: &dyn Frontend| {
        let unbound = AppSpec {
            component: component.clone(),
            ..AppSpec::default()
        };
        let said = frontend.refuse(&unbound);
        assert!(said.contains("acme:trail/log@1.0.0"), "{said}");

        let bound = unbound.env("RVM_LOG_IMPORTS", "acme:trail/log@1.0.0#record");
        let served = frontend.start(&bound);
        let response = post(served.as_ref(), "/run", "");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(json_of(&response), Value::Null);
        served.logs().wait_for(&[
            "guest log",
            "import=acme:trail/log@1.0.0#record",
            r#"{"event":"deployed"}"#,
        ]);
    });
}
