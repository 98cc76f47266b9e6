//! Errors, tracing and the forcing and inspecting of values: `abort`, `throw`, `addErrorContext`,
//! `trace`, `warn`, `tryEval`, `seq`, `deepSeq`, `typeOf`, the `is*` tests and `functionArgs`.

use crate::eval::compile::Param;
use crate::eval::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::print::print_value;
use crate::eval::value::{Attr, Attrs, Thunk, Value};

use super::{MORE, force_str, make_attrs};

pub(super) fn prim_abort(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Err(EvalError::new(
        ErrorKind::Abort,
        format!("evaluation aborted with the following error message: '{}'", s.s),
        pos,
    ))
}

pub(super) fn prim_throw(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, pos, MORE)?;
    Err(EvalError::new(ErrorKind::Throw, s.s, pos))
}

pub(super) fn prim_add_error_context(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    match ev.force(&a[1]) {
        Ok(v) => Ok(v),
        Err(mut e) => {
            if ev.settings.show_trace
                && let Ok(msg) = ev.force(&a[0])
                && let Ok(s) = ev.coerce_to_string(&msg, pos, MORE)
            {
                e.trace.push(crate::eval::error::Frame { pos, message: s.s });
            }
            Err(e)
        }
    }
}

pub(super) fn prim_deep_seq(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    ev.force_deep(&v)?;
    ev.force(&a[1])
}

pub(super) fn prim_seq(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    ev.force(&a[0])?;
    ev.force(&a[1])
}

pub(super) fn prim_function_args(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let f = ev.force(&a[0])?;
    match &f {
        Value::Lambda(c) => match &c.def.param {
            Param::Ident(_) => Ok(Value::attrs(Attrs::default())),
            Param::Pattern { formals, .. } => Ok(Value::attrs(Attrs::from_unsorted(
                formals
                    .iter()
                    .map(|f| Attr {
                        name: f.name,
                        value: Thunk::Val(Value::Bool(f.default.is_some())),
                        pos: f.pos,
                    })
                    .collect(),
            ))),
        },
        Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(Value::attrs(Attrs::default())),
        other => eval_error(
            format!(
                "expected a function but found {}: {}",
                other.describe(),
                ev.show_brief(other)
            ),
            pos,
        ),
    }
}

pub(super) fn is_type(ev: &mut Evaluator, a: &[Thunk], f: fn(&Value) -> bool) -> Result<Value> {
    let v = ev.force(&a[0])?;
    Ok(Value::Bool(f(&v)))
}

pub(super) fn prim_trace(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    match &v {
        Value::Str(s) => eprintln!("trace: {}", s.s),
        other => {
            ev.force_deep(other).ok();
            eprintln!("trace: {}", print_value(other));
        }
    }
    ev.force(&a[1])
}

pub(super) fn prim_warn(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let msg = force_str(ev, &a[0], pos)?;
    eprintln!("evaluation warning: {}", msg.s);
    ev.force(&a[1])
}

pub(super) fn prim_try_eval(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    match ev.force(&a[0]) {
        Ok(v) => Ok(make_attrs(vec![("success", Value::Bool(true)), ("value", v)])),
        Err(e) if matches!(e.kind, ErrorKind::Throw | ErrorKind::Assert) => Ok(make_attrs(vec![
            ("success", Value::Bool(false)),
            ("value", Value::Bool(false)),
        ])),
        Err(e) => Err(e),
    }
}

pub(super) fn prim_type_of(ev: &mut Evaluator, a: &[Thunk], _pos: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    Ok(Value::str(v.type_of()))
}
