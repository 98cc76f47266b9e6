//! Values of the Nix language and the thunks that delay them.
//!
//! Values are small (16 bytes): scalars inline, everything else behind an `Rc`. Attribute sets are vectors
//! sorted by symbol number, so lookup is a binary search and `//` a linear merge; the order users see (by
//! name) is made when printing or listing names. Thunks are forced in place and memoised; a thunk being forced
//! is a black hole, and forcing it again is infinite recursion. Expressions live for the whole process
//! (compiled files are leaked on purpose), so thunks hold `&'static` references into them.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::rc::Rc;

use super::compile::{Expr, LambdaDef};
use super::error::Pos;

/// An interned attribute or variable name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Sym(pub u32);

struct Interner {
    names: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner { names: Vec::new(), index: HashMap::new() });
}

impl Sym {
    pub fn new(name: &str) -> Sym {
        INTERNER.with(|i| {
            let mut i = i.borrow_mut();
            if let Some(&n) = i.index.get(name) {
                return Sym(n);
            }
            // Names live as long as the evaluator; leaking them makes `as_str` free.
            let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
            let n = i.names.len() as u32;
            i.names.push(leaked);
            i.index.insert(leaked, n);
            Sym(n)
        })
    }

    pub fn as_str(self) -> &'static str {
        INTERNER.with(|i| i.borrow().names[self.0 as usize])
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string's context: the store paths it refers to, in Nix's encoding (`/nix/store/..` for a plain path,
/// `!out!/nix/store/x.drv` for one output of a derivation, `=/nix/store/x.drv` for a derivation and all its
/// outputs).
pub type Context = BTreeSet<String>;

#[derive(Clone, PartialEq, Default)]
pub struct NixStr {
    pub s: String,
    pub ctx: Context,
}

impl NixStr {
    pub fn plain(s: impl Into<String>) -> NixStr {
        NixStr {
            s: s.into(),
            ctx: Context::new(),
        }
    }
}

/// One attribute: its value and where it was defined (for `unsafeGetAttrPos`).
#[derive(Clone)]
pub struct Attr {
    pub name: Sym,
    pub value: Thunk,
    pub pos: Pos,
}

/// An attribute set, sorted by symbol number.
#[derive(Clone, Default)]
pub struct Attrs {
    pub entries: Vec<Attr>,
}

impl Attrs {
    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        // Later definitions of the same name (from listToAttrs, say) are dropped: the first one wins.
        entries.dedup_by_key(|a| a.name);
        Attrs { entries }
    }

    pub fn get(&self, name: Sym) -> Option<&Thunk> {
        self.entries
            .binary_search_by_key(&name, |a| a.name)
            .ok()
            .map(|i| &self.entries[i].value)
    }

    pub fn get_attr(&self, name: Sym) -> Option<&Attr> {
        self.entries
            .binary_search_by_key(&name, |a| a.name)
            .ok()
            .map(|i| &self.entries[i])
    }

    pub fn get_str(&self, name: &str) -> Option<&Thunk> {
        self.get(Sym::new(name))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The attributes in the order Nix shows them: by name.
    pub fn sorted(&self) -> Vec<&Attr> {
        let mut v: Vec<&Attr> = self.entries.iter().collect();
        v.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        v
    }

    /// `self // other`: a linear merge, `other` winning.
    pub fn update(&self, other: &Attrs) -> Attrs {
        let (a, b) = (&self.entries, &other.entries);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].name.cmp(&b[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs { entries: out }
    }
}

/// A function value: its definition and the environment it closes over.
pub struct Closure {
    pub def: &'static LambdaDef,
    pub env: Rc<Env>,
}

pub type PrimFn = fn(&mut super::eval::Evaluator, &[Thunk], Pos) -> super::error::Result<Value>;

pub struct PrimOp {
    pub name: &'static str,
    pub arity: usize,
    pub f: PrimFn,
}

/// A primop applied to fewer arguments than it takes.
pub struct PrimOpApp {
    pub op: Rc<PrimOp>,
    pub args: Vec<Thunk>,
}

#[derive(Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<NixStr>),
    Path(Rc<str>),
    Attrs(Rc<Attrs>),
    List(Rc<Vec<Thunk>>),
    Lambda(Rc<Closure>),
    PrimOp(Rc<PrimOp>),
    PrimOpApp(Rc<PrimOpApp>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Rc::new(NixStr::plain(s)))
    }

    pub fn str_ctx(s: String, ctx: Context) -> Value {
        Value::Str(Rc::new(NixStr { s, ctx }))
    }

    pub fn list(items: Vec<Thunk>) -> Value {
        Value::List(Rc::new(items))
    }

    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(Rc::new(a))
    }

    /// The type name `builtins.typeOf` gives.
    pub fn type_of(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Path(_) => "path",
            Value::Attrs(_) => "set",
            Value::List(_) => "list",
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => "lambda",
        }
    }

    /// The type as error messages name it ("a string", "an integer").
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Path(_) => "a path",
            Value::Attrs(_) => "a set",
            Value::List(_) => "a list",
            Value::Lambda(_) => "a function",
            Value::PrimOp(_) => "a built-in function",
            Value::PrimOpApp(_) => "a partially applied built-in function",
        }
    }

    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_))
    }
}

/// The slots of an environment; one or two (most function calls) are held inline.
pub type Slots = smallvec::SmallVec<[Thunk; 2]>;

/// A variable scope at run time: the values of one `let`, `rec`, function call or `with`.
pub struct Env {
    pub slots: RefCell<Slots>,
    pub parent: Option<Rc<Env>>,
}

impl Env {
    pub fn new(parent: Option<Rc<Env>>, slots: Slots) -> Rc<Env> {
        Rc::new(Env {
            slots: RefCell::new(slots),
            parent,
        })
    }

    #[inline]
    pub fn up(self: &Rc<Env>, depth: u32) -> &Rc<Env> {
        let mut env = self;
        for _ in 0..depth {
            env = env
                .parent
                .as_ref()
                .expect("variable depth within the environment chain");
        }
        env
    }

    #[inline]
    pub fn get(&self, index: u32) -> Thunk {
        self.slots.borrow()[index as usize].clone()
    }
}

pub enum ThunkState {
    Pending(&'static Expr, Rc<Env>),
    /// A function applied to an argument, not yet called (what `map` and friends produce). Boxed, as is
    /// `Apply2`, to keep the common states (and so every thunk) small.
    Apply(Box<(Value, Thunk)>),
    /// A function applied to two arguments (`mapAttrs`).
    Apply2(Box<(Value, Thunk, Thunk)>),
    Done(Value),
    Blackhole,
}

/// A value, evaluated or not.
#[derive(Clone)]
pub enum Thunk {
    Val(Value),
    Lazy(Rc<LazyCell>),
}

pub struct LazyCell {
    pub state: RefCell<ThunkState>,
    /// Set once forced, so a forced thunk is read without borrowing the state's RefCell mutably.
    pub forced: Cell<bool>,
}

impl Thunk {
    pub fn pending(expr: &'static Expr, env: Rc<Env>) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Pending(expr, env)),
            forced: Cell::new(false),
        }))
    }

    pub fn apply(f: Value, arg: Thunk) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Apply(Box::new((f, arg)))),
            forced: Cell::new(false),
        }))
    }

    pub fn apply2(f: Value, a: Thunk, b: Thunk) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Apply2(Box::new((f, a, b)))),
            forced: Cell::new(false),
        }))
    }

    /// The value if it is already known.
    #[inline]
    pub fn value_if_forced(&self) -> Option<Value> {
        match self {
            Thunk::Val(v) => Some(v.clone()),
            Thunk::Lazy(cell) => {
                if cell.forced.get()
                    && let ThunkState::Done(v) = &*cell.state.borrow()
                {
                    return Some(v.clone());
                }
                None
            }
        }
    }

    /// Whether two thunks are the same value object (Nix treats such values, functions included, as equal).
    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        match (self, other) {
            (Thunk::Lazy(a), Thunk::Lazy(b)) => Rc::ptr_eq(a, b),
            (Thunk::Val(Value::Lambda(a)), Thunk::Val(Value::Lambda(b))) => Rc::ptr_eq(a, b),
            (Thunk::Val(Value::PrimOp(a)), Thunk::Val(Value::PrimOp(b))) => Rc::ptr_eq(a, b),
            (Thunk::Val(Value::Attrs(a)), Thunk::Val(Value::Attrs(b))) => Rc::ptr_eq(a, b),
            (Thunk::Val(Value::List(a)), Thunk::Val(Value::List(b))) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<Value> for Thunk {
    fn from(v: Value) -> Thunk {
        Thunk::Val(v)
    }
}
