//! Arithmetic, bitwise operations, rounding and `lessThan`.

use crate::eval::compile::BinOp;
use crate::eval::error::{Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Thunk, Value};

use super::force_int;

pub(super) fn arith(ev: &mut Evaluator, a: &[Thunk], pos: Pos, op: BinOp) -> Result<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    for v in [&x, &y] {
        if !matches!(v, Value::Int(_) | Value::Float(_)) {
            return eval_error(
                format!("expected an integer but found {}: {}", v.describe(), ev.show_brief(v)),
                pos,
            );
        }
    }
    ev.arith(op, x, y, pos)
}

pub(super) fn bits(ev: &mut Evaluator, a: &[Thunk], pos: Pos, f: fn(i64, i64) -> i64) -> Result<Value> {
    let x = force_int(ev, &a[0], pos)?;
    let y = force_int(ev, &a[1], pos)?;
    Ok(Value::Int(f(x, y)))
}

pub(super) fn round(ev: &mut Evaluator, a: &[Thunk], pos: Pos, f: fn(f64) -> f64) -> Result<Value> {
    match ev.force(&a[0])? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                return eval_error(
                    format!(
                        "float {} does not fit in an integer",
                        crate::eval::print::format_float(x)
                    ),
                    pos,
                );
            }
            Ok(Value::Int(r as i64))
        }
        other => eval_error(
            format!(
                "expected a float but found {}: {}",
                other.describe(),
                ev.show_brief(&other)
            ),
            pos,
        ),
    }
}

pub(super) fn prim_less_than(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    Ok(Value::Bool(ev.less_than(&x, &y, pos)?))
}
