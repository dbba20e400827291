//! WIT values as JSON, both ways, checked against the function's types; and
//! WIT types as WIT spells them, for the description of a component's
//! functions. README lists the mapping, one example per type family.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

/// How a result's `list<u8>` values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Bytes {
    /// An array of numbers, like any other list.
    #[default]
    Array,
    /// One base64 string.
    Base64,
}

/// The value `json` gives for a parameter of type `ty`, or why it is not one.
/// The error names what was expected and, below the parameter, where (`.x`,
/// `[2]`).
pub(crate) fn to_val(ty: &Type, json: &Value) -> Result<Val, String> {
    let wrong = || Err(format!("expected {}, got {}", wit(ty), shown(json)));
    Ok(match (ty, json) {
        (Type::Bool, Value::Bool(b)) => Val::Bool(*b),
        (Type::S8, _) => Val::S8(int(ty, json)?),
        (Type::U8, _) => Val::U8(int(ty, json)?),
        (Type::S16, _) => Val::S16(int(ty, json)?),
        (Type::U16, _) => Val::U16(int(ty, json)?),
        (Type::S32, _) => Val::S32(int(ty, json)?),
        (Type::U32, _) => Val::U32(int(ty, json)?),
        (Type::S64, _) => Val::S64(int(ty, json)?),
        (Type::U64, _) => Val::U64(int(ty, json)?),
        (Type::Float32, _) => {
            let x = float(ty, json)?;
            if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                return Err(format!(
                    "expected f32, got {} (beyond its range)",
                    shown(json)
                ));
            }
            Val::Float32(x as f32)
        }
        (Type::Float64, _) => Val::Float64(float(ty, json)?),
        (Type::Char, Value::String(s)) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return wrong(),
            }
        }
        (Type::String, Value::String(s)) => Val::String(s.clone()),
        (Type::List(list), Value::String(s)) if list.ty() == Type::U8 => {
            let bytes = BASE64
                .decode(s)
                .map_err(|e| format!("expected list<u8> as an array or base64, got {e}"))?;
            Val::List(bytes.into_iter().map(Val::U8).collect())
        }
        (Type::List(list), Value::Array(items)) => {
            let ty = list.ty();
            Val::List(elements(items.iter().map(|item| (&ty, item)))?)
        }
        (Type::Tuple(tuple), Value::Array(items)) if items.len() == tuple.types().len() => {
            let types: Vec<Type> = tuple.types().collect();
            Val::Tuple(elements(types.iter().zip(items))?)
        }
        (Type::Record(record), Value::Object(object)) => {
            let mut fields = Vec::with_capacity(record.fields().len());
            for field in record.fields() {
                let value = object
                    .get(field.name)
                    .ok_or_else(|| format!("field `{}` is missing", field.name))?;
                let val = to_val(&field.ty, value).map_err(|e| format!(".{}: {e}", field.name))?;
                fields.push((field.name.to_string(), val));
            }
            if let Some(extra) = object
                .keys()
                .find(|key| !record.fields().any(|f| f.name == key.as_str()))
            {
                return Err(format!("no field `{extra}` in {}", wit(ty)));
            }
            Val::Record(fields)
        }
        (Type::Variant(variant), _) => {
            let (name, payload) = case(ty, json)?;
            let Some(case) = variant.cases().find(|c| c.name == name) else {
                return Err(format!("no case `{name}` in {}", wit(ty)));
            };
            let payload = match (&case.ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(ty), Some(value)) => Some(Box::new(
                    to_val(ty, value).map_err(|e| format!("case `{name}`: {e}"))?,
                )),
                (Some(ty), None) => {
                    return Err(format!(
                        "case `{name}` carries {}: give {{\"{name}\": …}}",
                        wit(ty)
                    ));
                }
                (None, Some(_)) => return Err(format!("case `{name}` carries nothing")),
            };
            Val::Variant(name.to_string(), payload)
        }
        (Type::Enum(cases), Value::String(name)) if cases.names().any(|n| n == name) => {
            Val::Enum(name.clone())
        }
        (Type::Option(_), Value::Null) => Val::Option(None),
        (Type::Option(option), _) => Val::Option(Some(Box::new(to_val(&option.ty(), json)?))),
        (Type::Result(result), _) => {
            let (name, payload) = case(ty, json)?;
            let ty = match name {
                "ok" => result.ok(),
                "err" => result.err(),
                _ => {
                    return Err(format!(
                        "expected {{\"ok\": …}} or {{\"err\": …}}, got `{name}`"
                    ));
                }
            };
            let payload = match (ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (Some(ty), Some(value)) => Some(Box::new(
                    to_val(&ty, value).map_err(|e| format!("{name}: {e}"))?,
                )),
                (Some(ty), None) => return Err(format!("`{name}` carries {}", wit(&ty))),
                (None, Some(_)) => return Err(format!("`{name}` carries nothing")),
            };
            Val::Result(if name == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            })
        }
        (Type::Flags(flags), Value::Array(names)) => {
            let mut set = Vec::with_capacity(names.len());
            for name in names {
                match name.as_str() {
                    Some(name) if flags.names().any(|n| n == name) => set.push(name.to_string()),
                    _ => {
                        return Err(format!(
                            "expected a flag of {}, got {}",
                            wit(ty),
                            shown(name)
                        ));
                    }
                }
            }
            Val::Flags(set)
        }
        _ => return wrong(),
    })
}

/// The values of a list or tuple, naming the index of the first that is wrong.
fn elements<'a>(items: impl Iterator<Item = (&'a Type, &'a Value)>) -> Result<Vec<Val>, String> {
    items
        .enumerate()
        .map(|(i, (ty, item))| to_val(ty, item).map_err(|e| format!("[{i}]: {e}")))
        .collect()
}

/// An integer of `ty`'s range: a JSON number, or a decimal string for values
/// that JSON numbers do not hold exactly.
fn int<T: TryFrom<i128>>(ty: &Type, json: &Value) -> Result<T, String> {
    let value: Option<i128> = match json {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.parse::<i128>().ok(),
        _ => None,
    };
    let expected = || format!("expected {} ({}), got {}", wit(ty), range(ty), shown(json));
    let value = value.ok_or_else(expected)?;
    T::try_from(value).map_err(|_| expected())
}

fn range(ty: &Type) -> &'static str {
    match ty {
        Type::S8 => "-128 to 127",
        Type::U8 => "0 to 255",
        Type::S16 => "-32768 to 32767",
        Type::U16 => "0 to 65535",
        Type::S32 => "-2147483648 to 2147483647",
        Type::U32 => "0 to 4294967295",
        Type::S64 => "-9223372036854775808 to 9223372036854775807",
        Type::U64 => "0 to 18446744073709551615",
        _ => "not an integer",
    }
}

/// A float: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn float(ty: &Type, json: &Value) -> Result<f64, String> {
    match json {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "expected {} (a number, \"NaN\", \"Infinity\" or \"-Infinity\"), got {}",
            wit(ty),
            shown(json)
        )
    })
}

/// A case as JSON gives it: `"name"` or `{"name": payload}`.
fn case<'a>(ty: &Type, json: &'a Value) -> Result<(&'a str, Option<&'a Value>), String> {
    match json {
        Value::String(name) => Ok((name, None)),
        Value::Object(object) if object.len() == 1 => {
            let (name, payload) = object.iter().next().expect("one entry");
            Ok((name, Some(payload)))
        }
        _ => Err(format!(
            "expected {} as \"case\" or {{\"case\": payload}}, got {}",
            wit(ty),
            shown(json)
        )),
    }
}

/// A result value of type `ty` as JSON.
pub(crate) fn from_val(val: &Val, ty: &Type, bytes: Bytes) -> Value {
    match (val, ty) {
        (Val::Bool(b), _) => Value::Bool(*b),
        (Val::S8(n), _) => (*n).into(),
        (Val::U8(n), _) => (*n).into(),
        (Val::S16(n), _) => (*n).into(),
        (Val::U16(n), _) => (*n).into(),
        (Val::S32(n), _) => (*n).into(),
        (Val::U32(n), _) => (*n).into(),
        (Val::S64(n), _) => (*n).into(),
        (Val::U64(n), _) => (*n).into(),
        // The f32's own shortest decimal form, not that of the f64 it widens to.
        (Val::Float32(x), _) => float_json(x.to_string().parse().unwrap_or(f64::NAN)),
        (Val::Float64(x), _) => float_json(*x),
        (Val::Char(c), _) => Value::String(c.to_string()),
        (Val::String(s), _) => Value::String(s.clone()),
        (Val::List(items), Type::List(list)) => {
            let ty = list.ty();
            if bytes == Bytes::Base64 && ty == Type::U8 {
                let raw: Vec<u8> = items
                    .iter()
                    .filter_map(|v| match v {
                        Val::U8(b) => Some(*b),
                        _ => None,
                    })
                    .collect();
                return Value::String(BASE64.encode(raw));
            }
            Value::Array(items.iter().map(|v| from_val(v, &ty, bytes)).collect())
        }
        (Val::Tuple(items), Type::Tuple(tuple)) => Value::Array(
            items
                .iter()
                .zip(tuple.types())
                .map(|(v, ty)| from_val(v, &ty, bytes))
                .collect(),
        ),
        (Val::Record(fields), Type::Record(record)) => Value::Object(
            fields
                .iter()
                .zip(record.fields())
                .map(|((name, v), field)| (name.clone(), from_val(v, &field.ty, bytes)))
                .collect(),
        ),
        (Val::Variant(name, None), _) | (Val::Enum(name), _) => Value::String(name.clone()),
        (Val::Variant(name, Some(payload)), Type::Variant(variant)) => {
            let payload = variant
                .cases()
                .find(|case| case.name == name)
                .and_then(|case| case.ty)
                .map_or(Value::Null, |ty| from_val(payload, &ty, bytes));
            single(name, payload)
        }
        (Val::Option(None), _) => Value::Null,
        (Val::Option(Some(v)), Type::Option(option)) => from_val(v, &option.ty(), bytes),
        (Val::Result(result), Type::Result(types)) => {
            let (name, payload, ty) = match result {
                Ok(payload) => ("ok", payload, types.ok()),
                Err(payload) => ("err", payload, types.err()),
            };
            let payload = match (payload, ty) {
                (Some(v), Some(ty)) => from_val(v, &ty, bytes),
                _ => Value::Null,
            };
            single(name, payload)
        }
        (Val::Flags(names), _) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        // A value that does not match its type, or one of the kinds a callable
        // function never carries (see `unavailable`).
        _ => Value::Null,
    }
}

fn single(name: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(name.to_string(), value)]))
}

fn float_json(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => Value::String("NaN".into()),
        None if x > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Why a value of `ty` cannot travel as JSON, if it cannot: resources and
/// WASIp3's futures, streams and error contexts are handles into an instance;
/// an option of an option would be `null` for two different values; maps and
/// fixed-length lists are proposals this engine does not enable.
pub(crate) fn unavailable(ty: &Type) -> Option<String> {
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some(format!("{} is a resource", wit(ty))),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            Some(format!("{} is a handle of asynchronous state", wit(ty)))
        }
        Type::Map(_) | Type::FixedLengthList(_) => Some(format!("{} is not supported", wit(ty))),
        Type::List(list) => unavailable(&list.ty()),
        Type::Option(option) if matches!(option.ty(), Type::Option(_)) => Some(format!(
            "{} has no JSON form that tells its values apart",
            wit(ty)
        )),
        Type::Option(option) => unavailable(&option.ty()),
        Type::Result(result) => result
            .ok()
            .and_then(|t| unavailable(&t))
            .or_else(|| result.err().and_then(|t| unavailable(&t))),
        Type::Record(record) => record.fields().find_map(|f| unavailable(&f.ty)),
        Type::Tuple(tuple) => tuple.types().find_map(|t| unavailable(&t)),
        Type::Variant(variant) => variant
            .cases()
            .find_map(|c| c.ty.as_ref().and_then(unavailable)),
        _ => None,
    }
}

/// `ty` as WIT spells it; records, variants, enums and flags, which WIT names,
/// are spelled out with their fields or cases.
pub(crate) fn wit(ty: &Type) -> String {
    let list = |items: Vec<String>| items.join(", ");
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit(&m.key()), wit(&m.value())),
        Type::Record(r) => format!(
            "record {{ {} }}",
            list(
                r.fields()
                    .map(|f| format!("{}: {}", f.name, wit(&f.ty)))
                    .collect()
            )
        ),
        Type::Tuple(t) => format!("tuple<{}>", list(t.types().map(|t| wit(&t)).collect())),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            list(
                v.cases()
                    .map(|c| match &c.ty {
                        Some(ty) => format!("{}({})", c.name, wit(ty)),
                        None => c.name.to_string(),
                    })
                    .collect()
            )
        ),
        Type::Enum(e) => format!("enum {{ {} }}", list(e.names().map(String::from).collect())),
        Type::Option(o) => format!("option<{}>", wit(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit(&ok), wit(&err)),
        },
        Type::Flags(f) => format!(
            "flags {{ {} }}",
            list(f.names().map(String::from).collect())
        ),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// A JSON value in an error message, cut short.
fn shown(json: &Value) -> String {
    const MOST: usize = 40;
    let text = json.to_string();
    match text.char_indices().nth(MOST) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}
