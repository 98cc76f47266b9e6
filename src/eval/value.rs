//! Values of the Nix language and the thunks that delay them.
//!
//! Values are small (16 bytes): scalars inline, everything else behind an `Rc`. Attribute sets are vectors
//! sorted by symbol number, so lookup is a binary search and `//` a linear merge; the order users see (by
//! name) is made when printing or listing names. Thunks are forced in place and memoised; a thunk being forced
//! is a black hole, and forcing it again is infinite recursion. Expressions live for the whole process
//! (compiled files are leaked on purpose), so thunks hold `&'static` references into them.

use std::cell::RefCell;
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
///
/// `a // b` with a small `b` makes a layer over `a` instead of copying it: lookups look at the layer, then
/// below. Layers are at most `MAX_LAYERS` deep (a deeper update copies), and the merged list of a layered set
/// is made once, the first time something iterates over it. This keeps chains of `//` (NixOS's module
/// system and overlays build long ones) from copying the whole set at every step.
#[derive(Clone, Default)]
pub struct Attrs {
    /// The attributes of this layer.
    own: Vec<Attr>,
    /// The set this layer was put over, and the number of layers below this one.
    base: Option<(Rc<Attrs>, u32)>,
    len: usize,
    merged: std::cell::OnceCell<Vec<Attr>>,
}

const MAX_LAYERS: u32 = 16;

impl Attrs {
    /// A set of attributes already sorted by symbol, without duplicates.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        Attrs {
            len: entries.len(),
            own: entries,
            base: None,
            merged: std::cell::OnceCell::new(),
        }
    }

    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        // Later definitions of the same name (from listToAttrs, say) are dropped: the first one wins.
        entries.dedup_by_key(|a| a.name);
        Attrs::from_sorted(entries)
    }

    #[inline]
    pub fn get(&self, name: Sym) -> Option<&Thunk> {
        self.get_attr(name).map(|a| &a.value)
    }

    pub fn get_attr(&self, name: Sym) -> Option<&Attr> {
        let mut set = self;
        loop {
            if let Ok(i) = set.own.binary_search_by_key(&name, |a| a.name) {
                return Some(&set.own[i]);
            }
            match &set.base {
                Some((base, _)) => set = base,
                None => return None,
            }
        }
    }

    pub fn get_str(&self, name: &str) -> Option<&Thunk> {
        self.get(Sym::new(name))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every attribute, sorted by symbol.
    pub fn entries(&self) -> &[Attr] {
        match &self.base {
            None => &self.own,
            Some(_) => self.merged.get_or_init(|| self.merge_layers()),
        }
    }

    /// The layers' attributes merged in one pass over the bottom set: the small upper layers are combined
    /// first (upper ones winning), so no intermediate layer is ever copied whole.
    fn merge_layers(&self) -> Vec<Attr> {
        let mut upper: Vec<Attr> = Vec::new();
        let mut set = self;
        loop {
            match &set.base {
                Some((base, _)) => {
                    // `upper` holds newer layers; they win over this one.
                    upper = merge(&set.own, &upper);
                    set = base;
                }
                None => return merge(set.entries(), &upper),
            }
        }
    }

    /// Adds or replaces an attribute of a set being built.
    pub fn insert(&mut self, attr: Attr) {
        self.flatten();
        match self.own.binary_search_by_key(&attr.name, |a| a.name) {
            Ok(i) => self.own[i] = attr,
            Err(i) => {
                self.own.insert(i, attr);
                self.len += 1;
            }
        }
    }

    fn flatten(&mut self) {
        if self.base.is_some() {
            self.own = self.entries().to_vec();
            self.base = None;
            self.merged = std::cell::OnceCell::new();
        }
    }

    /// The attributes in the order Nix shows them: by name.
    pub fn sorted(&self) -> Vec<&Attr> {
        let mut v: Vec<&Attr> = self.entries().iter().collect();
        v.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        v
    }

    /// `a // b`, `b` winning.
    pub fn update(a: &Rc<Attrs>, b: &Attrs) -> Attrs {
        let depth = a.base.as_ref().map_or(0, |(_, d)| d + 1);
        if b.len() * 8 <= a.len() && depth < MAX_LAYERS {
            let own = b.entries().to_vec();
            let added = own.iter().filter(|x| a.get_attr(x.name).is_none()).count();
            return Attrs {
                len: a.len() + added,
                own,
                base: Some((a.clone(), depth)),
                merged: std::cell::OnceCell::new(),
            };
        }
        Attrs::from_sorted(merge(a.entries(), b.entries()))
    }
}

/// Two sorted attribute lists merged, `b` winning.
fn merge(a: &[Attr], b: &[Attr]) -> Vec<Attr> {
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
    out
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
    /// A function applied to an argument, not yet called (what `map` and friends produce).
    Apply(Value, Thunk),
    /// A function applied to two arguments (`mapAttrs`), boxed to keep every thunk small.
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
}

impl Thunk {
    pub fn pending(expr: &'static Expr, env: Rc<Env>) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Pending(expr, env)),
        }))
    }

    pub fn apply(f: Value, arg: Thunk) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Apply(f, arg)),
        }))
    }

    pub fn apply2(f: Value, a: Thunk, b: Thunk) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            state: RefCell::new(ThunkState::Apply2(Box::new((f, a, b)))),
        }))
    }

    /// The value if it is already known.
    #[inline]
    pub fn value_if_forced(&self) -> Option<Value> {
        match self {
            Thunk::Val(v) => Some(v.clone()),
            Thunk::Lazy(cell) => {
                if let Ok(state) = cell.state.try_borrow()
                    && let ThunkState::Done(v) = &*state
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
