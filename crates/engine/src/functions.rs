//! A component served in function mode: the functions it exports (at the top
//! of its world or in exported interfaces), each reached at a path, and the
//! description `GET /` answers with.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Type};

use crate::json::{unavailable, wit};

/// Every function a component exports, by path.
pub(crate) struct Functions {
    by_path: BTreeMap<String, Function>,
    /// What `GET /` answers, made once.
    description: Value,
}

pub(crate) struct Function {
    /// Where it is found in an instance of the component.
    pub(crate) index: ComponentExportIndex,
    pub(crate) params: Vec<(String, Type)>,
    pub(crate) result: Option<Type>,
    /// Why it cannot be called with JSON, if it cannot.
    pub(crate) unavailable: Option<String>,
}

impl Functions {
    /// The component's exported functions; `None` if it exports none.
    pub(crate) fn of(component: &Component) -> Option<Functions> {
        let engine = component.engine();
        let mut by_path = BTreeMap::new();
        for (name, export) in component.component_type().exports(engine) {
            match export.ty {
                ComponentItem::ComponentFunc(func) => {
                    let index = component.get_export_index(None, name)?;
                    by_path.insert(format!("/{name}"), Function::new(index, &func));
                }
                ComponentItem::ComponentInstance(interface) => {
                    let parent = component.get_export_index(None, name)?;
                    for (fn_name, item) in interface.exports(engine) {
                        if let ComponentItem::ComponentFunc(func) = item.ty {
                            let index = component.get_export_index(Some(&parent), fn_name)?;
                            by_path
                                .insert(format!("/{name}/{fn_name}"), Function::new(index, &func));
                        }
                    }
                }
                _ => {}
            }
        }
        if by_path.is_empty() {
            return None;
        }
        let description = describe(&by_path);
        Some(Functions {
            by_path,
            description,
        })
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Function> {
        self.by_path.get(path)
    }

    pub(crate) fn description(&self) -> &Value {
        &self.description
    }
}

/// Every function with its path, parameters and result in WIT's words; the
/// ones JSON cannot call, with the reason.
fn describe(by_path: &BTreeMap<String, Function>) -> Value {
    let functions: Vec<Value> = by_path
        .iter()
        .map(|(path, f)| {
            let params: Vec<Value> = f
                .params
                .iter()
                .map(|(name, ty)| json!({ "name": name, "type": wit(ty) }))
                .collect();
            let mut entry = json!({
                "path": path,
                "method": "POST",
                "params": params,
                "result": f.result.as_ref().map(wit),
            });
            if let Some(why) = &f.unavailable {
                entry["unavailable"] = Value::String(why.clone());
            }
            entry
        })
        .collect();
    json!({ "functions": functions })
}

impl Function {
    fn new(index: ComponentExportIndex, func: &wasmtime::component::types::ComponentFunc) -> Self {
        let params: Vec<(String, Type)> = func
            .params()
            .map(|(name, ty)| (name.to_string(), ty))
            .collect();
        let result = func.results().next();
        let unavailable = params
            .iter()
            .find_map(|(name, ty)| unavailable(ty).map(|why| format!("parameter `{name}`: {why}")))
            .or_else(|| {
                result
                    .as_ref()
                    .and_then(unavailable)
                    .map(|why| format!("result: {why}"))
            })
            .or_else(|| {
                func.async_()
                    .then(|| "an async function (WASIp3)".to_string())
            });
        Function {
            index,
            params,
            result,
            unavailable,
        }
    }
}
