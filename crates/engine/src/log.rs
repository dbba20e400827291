//! What a guest may write to the server's log: `rvm:lambda/log@0.1.0`'s
//! `audit`, and imported functions of other worlds an operator binds to the
//! log by name ([`LogImport`]), so that a guest written against someone
//! else's world loads unchanged. Each call is one structured line naming the
//! application.

use std::fmt;

use serde_json::{Map, Value};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, Type, Val};
use wasmtime::error::Context as _;
use wasmtime::{Result, bail};

use crate::host::Host;

/// The interface as components import it; later 0.1.x imports match it too.
const INTERFACE: &str = "rvm:lambda/log@0.1.0";

/// An imported function bound to the log: `interface#function`, whose
/// parameters are all strings and which returns nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogImport {
    pub interface: String,
    pub function: String,
}

impl LogImport {
    /// A comma-separated list of `pkg:name/interface@version#function`.
    pub fn parse_list(text: &str) -> Result<Vec<LogImport>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (interface, function) = item
                    .split_once('#')
                    .filter(|(i, f)| i.contains(':') && i.contains('/') && !f.is_empty())
                    .ok_or_else(|| {
                        format!("`{item}` is not pkg:name/interface@version#function")
                    })?;
                Ok(LogImport {
                    interface: interface.to_string(),
                    function: function.to_string(),
                })
            })
            .collect()
    }
}

impl fmt::Display for LogImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.interface, self.function)
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    let mut log = linker.instance(INTERFACE).context(INTERFACE)?;
    log.func_wrap("audit", |store, (action, detail): (String, String)| {
        let app = &store.data().app;
        tracing::info!(app = %app, action = %action, detail = %detail, "audit");
        Ok(())
    })
    .context("rvm:lambda/log#audit")
}

/// Binds those of `imports` that `component` imports; one that it imports
/// with another shape is an error naming it.
pub(crate) fn bind_imports(
    linker: &mut Linker<Host>,
    component: &Component,
    imports: &[LogImport],
) -> Result<()> {
    let engine = component.engine();
    let ty = component.component_type();
    for import in imports {
        let Some(interface) = ty.get_import(engine, &import.interface) else {
            continue;
        };
        let ComponentItem::ComponentInstance(interface) = interface.ty else {
            bail!(
                "log import {import}: {} is not an interface",
                import.interface
            );
        };
        let Some(function) = interface.get_export(engine, &import.function) else {
            continue;
        };
        let ComponentItem::ComponentFunc(function) = function.ty else {
            bail!("log import {import}: not a function");
        };
        let names: Vec<String> = function.params().map(|(n, _)| n.to_string()).collect();
        if function.params().any(|(_, ty)| ty != Type::String) || function.results().len() != 0 {
            bail!(
                "log import {import}: its parameters must all be strings and it must return nothing"
            );
        }
        let shown = import.to_string();
        linker
            .instance(&import.interface)
            .and_then(|mut instance| {
                instance.func_new(&import.function, move |store, _, params, _| {
                    let values: Map<String, Value> = names
                        .iter()
                        .zip(params)
                        .filter_map(|(name, val)| match val {
                            Val::String(s) => Some((name.clone(), Value::String(s.clone()))),
                            _ => None,
                        })
                        .collect();
                    let (app, values) = (&store.data().app, Value::Object(values));
                    tracing::info!(app = %app, import = %shown, values = %values, "guest log");
                    Ok(())
                })
            })
            .with_context(|| format!("binding log import {import}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_imports_is_read_and_a_malformed_one_refused() {
        let list = LogImport::parse_list("acme:audit/trail@1.0.0#record, x:y/z#w").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].to_string(), "acme:audit/trail@1.0.0#record");
        assert_eq!(list[1].function, "w");
        for bad in ["acme:audit/trail", "trail#record", "acme:audit/trail#"] {
            assert!(LogImport::parse_list(bad).is_err(), "{bad}");
        }
    }
}
