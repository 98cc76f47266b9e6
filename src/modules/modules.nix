# evalModules: modules (files, functions or sets, with `imports`) to { config, options, check }.
#
# Options declared in several modules merge; definitions are gathered per option with their file and line;
# `mkIf`, `mkMerge` and `mkOverride` met above an option are pushed down to it without evaluating conditions
# (so `config` may refer to itself); at the option, conditions are evaluated, the definitions of the best
# priority kept, sorted by `mkOrder`, checked against the type and merged. `check` is true, or throws for the
# first definition of an option that does not exist, naming its file and line and the nearest option; then
# the same inside each submodule (a submodule's value also checks itself when used, as in NixOS).
{ lib }:
{ modules, specialArgs ? { }, prefix ? [ ], args ? { } }:
let
  inherit (lib) isAttrs isFunction isPath isString isList isBool attrNames mapAttrs filter map concatMap
    concatLists length head showOption foldl' elem sort;
  types = lib.types;

  # Where a definition is: the file and line of its attribute when known, else the module's file.
  where = d: if d.pos or null != null then "${d.pos.file}:${toString d.pos.line}" else d.file;

  # ---- module arguments
  # Each argument on its own, lazily: `lib`, `config` and the special arguments never wait for `config`, so a
  # module's shape may use `lib` (`config = lib.mkIf ...`) while only `_module.args` come from the configuration.
  moduleArg = n:
    if n == "lib" then lib
    else if n == "config" then config
    else if n == "options" then options
    else if specialArgs ? ${n} then specialArgs.${n}
    else if args ? ${n} then args.${n}
    else config._module.args.${n} or (throw "module argument `${n}' is not available (not in specialArgs nor _module.args)");
  applyModule = f: f (mapAttrs (n: _: moduleArg n) (builtins.functionArgs f));

  # ---- collecting the modules
  normalize = file: key: m:
    if isPath m || isString m then
      normalize (toString m) (toString m) (import m)
    else if isFunction m then
      normalize file key (applyModule m)
    else if !isAttrs m then
      throw "module ${file} is not a module (a set, a function or a path), but ${builtins.typeOf m}"
    else
      let
        file' = m._file or file;
        structured = m ? options || m ? config;
      in {
        key = m.key or key;
        file = file';
        imports = m.imports or [ ];
        options = m.options or { };
        config = if structured then m.config or { } else removeAttrs m [ "imports" "_file" "key" "disabledModules" "meta" "_defPos" ];
        pos = m._defPos or null;
        importsAt = let p = builtins.unsafeGetAttrPos "imports" m; in if p != null then "${p.file}:${toString p.line}" else file';
      };
  # A path in `imports` that names nothing is reported with the file and line of that `imports`, not as
  # a failed `import` here.
  importModule = m: i: im:
    let
      target = if builtins.pathExists im && builtins.readFileType im == "directory" then "${toString im}/default.nix" else toString im;
    in
    if (isPath im || isString im) && !builtins.pathExists target then
      throw "getting status of '${target}': No such file or directory\n(named in the `imports' at ${m.importsAt})"
    else normalize m.file "${m.key}:${toString i}" im;
  collected = builtins.genericClosure {
    startSet = lib.imap0 (i: m: normalize "<unknown-file>" "root:${toString i}" m) (modules ++ [ internalModule ]);
    operator = m: lib.imap0 (importModule m) m.imports;
  };

  internalModule = {
    _file = "rixos/modules.nix";
    key = "rixos-internal-module";
    options._module.args = lib.mkOption { type = types.lazyAttrsOf types.raw; default = { }; internal = true; description = "Arguments passed to every module."; };
    options._module.check = lib.mkOption { type = types.bool; default = true; internal = true; description = "Whether to check that every definition has an option."; };
  };

  # ---- the option tree
  isOptionNode = lib.isOption;
  declTree = loc: decls:
    let
      names = lib.unique (concatMap (d: attrNames d.value) decls);
      node = n:
        let
          sub = map (d: { inherit (d) file; value = d.value.${n}; }) (filter (d: d.value ? ${n}) decls);
          optionDecls = filter (d: isOptionNode d.value) sub;
        in
        if optionDecls != [ ] then
          mkLeaf (loc ++ [ n ]) optionDecls
        else
          declTree (loc ++ [ n ]) sub;
    in
    lib.genAttrs names node;
  mkLeaf = loc: decls:
    let merged = foldl' (a: d: a // d.value) { } decls; in
    merged // { _type = "option"; loc = loc; declarations = map (d: d.file) decls; };
  optionTree = declTree prefix (map (m: { inherit (m) file; value = m.options; }) collected);

  # ---- definitions, pushed down the tree
  pushDown = v:
    if isAttrs v && v ? _type then
      if v._type == "merge" then concatMap pushDown v.contents
      else if v._type == "if" then map (mapAttrs (_: x: lib.mkIf v.condition x)) (pushDown v.content)
      else if v._type == "override" then map (mapAttrs (_: x: lib.mkOverride v.priority x)) (pushDown v.content)
      else [ v ]
    else [ v ];
  # defs: [{ file, pos, value }] at a non-option node of the tree.
  splitDefs = defs:
    concatMap (d: map (v: { inherit (d) file; value = v; }) (pushDown d.value)) defs;
  defsOf = node: defs: n:
    concatMap (d:
      if isAttrs d.value && d.value ? ${n} then
        [ { inherit (d) file; pos = builtins.unsafeGetAttrPos n d.value; value = d.value.${n}; } ]
      else [ ]) defs;

  evalNode = node: defs:
    if isOptionNode node then evalOption node defs
    else
      let parts = splitDefs defs; in
      mapAttrs (n: sub: evalNode sub (defsOf node parts n)) node;

  # Conditions, merges and overrides at an option, with the priority of each remaining definition.
  flatten = prio: v:
    if isAttrs v && v ? _type then
      if v._type == "merge" then concatMap (flatten prio) v.contents
      else if v._type == "if" then
        (if isBool v.condition then (if v.condition then flatten prio v.content else [ ])
         else throw "mkIf called with a non-Boolean condition")
      else if v._type == "override" then flatten v.priority v.content
      else [ { priority = prio; value = v; } ]
    else [ { priority = prio; value = v; } ];
  orderOf = v: if isAttrs v && (v._type or null) == "order" then v.priority else 1000;
  stripOrder = v: if isAttrs v && (v._type or null) == "order" then stripOrder v.content else v;

  evalOption = opt: defs:
    let
      loc = opt.loc;
      withDefault = defs ++ lib.optional (opt ? default) { file = "the default of `${showOption loc}'"; pos = null; value = lib.mkOptionDefault opt.default; };
      flat = concatMap (d: map (f: d // f) (flatten 100 d.value)) withDefault;
      best = foldl' (m: d: if d.priority < m then d.priority else m) 9999 flat;
      kept = filter (d: d.priority == best) flat;
      sorted = sort (a: b': orderOf a.value < orderOf b'.value) kept;
      final = map (d: d // { value = stripOrder d.value; }) sorted;
      type = opt.type or types.unspecified;
      userDefs = filter (d: d.priority < 1500) flat;
      merged =
        if final == [ ] then throw "The option `${showOption loc}' is used but not defined."
        else if (opt.readOnly or false) && length userDefs > 1 then
          throw "The option `${showOption loc}' is read-only, but it's set multiple times. Definition values:${lib.concatMapStrings (d: "\n- In `${where d}'") userDefs}"
        else types.checked type loc final;
      # Noted when forced: the test that every declared option changes the system lists the options nothing read.
      value = builtins.rixosOptionRead loc (if opt ? apply then opt.apply merged else merged);
    in
    opt // {
      inherit value;
      isDefined = final != [ ];
      definitionsWithLocations = userDefs;
      files = map (d: d.file) userDefs;
      # Definitions inside submodules without an option, found without evaluating any value.
      subOptionsChecked = type.checkDefinitions or null == null || final == [ ] || type.checkDefinitions loc final;
    };

  topDefs = map (m: { inherit (m) file; pos = m.pos; value = m.config; }) collected;
  options = evalNode optionTree topDefs;

  # config: the values of the options, lazily.
  valuesOf = node: if isOptionNode node then node.value else mapAttrs (_: valuesOf) node;
  config = valuesOf options;

  # ---- definitions of options that do not exist
  allOptionPaths = node: loc:
    if isOptionNode node then [ loc ]
    else concatLists (lib.mapAttrsToList (n: sub: allOptionPaths sub (loc ++ [ n ])) node);
  unmatched = node: loc: defs:
    if isOptionNode node then
      # An option whose type has sub-options (submodules) checks its own definitions: `subOptionsChecked`.
      [ ]
    else
      let parts = splitDefs defs; in
      concatMap (d:
        if !isAttrs d.value then [ { path = loc; inherit d; } ]
        else concatMap (n:
          if node ? ${n} then unmatched node.${n} (loc ++ [ n ]) (defsOf node [ d ] n)
          else [ { path = loc ++ [ n ]; d = d // { pos = builtins.unsafeGetAttrPos n d.value; }; } ]) (attrNames d.value)) parts;
  problems = unmatched optionTree prefix topDefs;
  check =
    if !config._module.check then true
    else if problems == [ ] then lib.all (o: o.subOptionsChecked) (lib.collect isOptionNode options)
    else
      let
        p = head problems;
        name = showOption p.path;
        # Candidates: every option and every set of options, so `services.opensh` meets `services.openssh`.
        prefixes = concatMap (loc: lib.genList (i: showOption (lib.take (i + 1) loc)) (length loc)) (allOptionPaths optionTree prefix);
        near = builtins.rixosNearest name (lib.unique prefixes);
      in
      throw "The option `${name}' does not exist. Definition values:\n- In `${where p.d}'${if near != null then "\nDid you mean `${near}'?" else ""}";
in
{
  inherit options config check;
  _module = { inherit collected; };
}
