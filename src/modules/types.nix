# Option types: each checks a definition's value and merges a list of definitions ({ file, pos, value }).
# Types that hold submodules also have `checkDefinitions loc defs`: true, or a throw for the first definition
# inside them without an option (null for types with nothing to check), so the configuration's `check` can
# reach typos inside submodules without evaluating any value.
{ lib }:
let
  inherit (lib) isAttrs isList isString isInt isBool isFunction isPath isFloat elem all any map filter head
    length concatLists concatMap concatStringsSep attrNames mapAttrs zipAttrsWith showOption foldl';

  where = d: if d.pos or null != null then "${d.pos.file}:${toString d.pos.line}" else d.file;
  show = v:
    let r = builtins.tryEval (builtins.deepSeq v v); in
    if !r.success then "«error»"
    else if isString v then builtins.toJSON v
    else if isFunction v then "«function»"
    else if isAttrs v && lib.isDerivation v then "«derivation ${v.name or "?"}»"
    else builtins.toJSON v;
  listDefs = defs: concatStringsSep "" (map (d: "\n- In `${where d}': ${show d.value}") defs);

  mergeEqualOption = loc: defs:
    let first = head defs; in
    if all (d: d.value == first.value) defs then first.value
    else throw "The option `${showOption loc}' has conflicting definition values:${listDefs defs}";
  mergeOneOption = loc: defs:
    if length defs == 1 then (head defs).value
    else throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique.\nDefinition values:${listDefs defs}";

  mkOptionType = attrs: {
    _type = "option-type";
    description = attrs.name;
    check = _: true;
    merge = mergeEqualOption;
    getSubOptions = _: { };
    getSubModules = null;
    checkDefinitions = null;
    nestedTypes = { };
  } // attrs;
  # The elements of list definitions, each with its location named as NixOS names it.
  listEntries = loc: defs:
    concatLists (lib.imap1 (n: d: lib.imap1 (m: v: {
      loc = loc ++ [ "[definition ${toString n}-entry ${toString m}]" ];
      def = { inherit (d) file; pos = d.pos or null; value = v; };
    }) d.value) defs);
  # checkDefinitions of a container: its element type's, over each element's definitions.
  checkElements = elemType: elementDefs:
    if elemType.checkDefinitions or null == null then null
    else loc: defs: all (x: x) (elementDefs loc defs);

  # Each definition is checked against the type before merging; a mismatch names the option, the type, the
  # value and where it was defined.
  # Whether a definition is there once its conditions are applied: `x.name = mkIf false v` (or `mkMerge [ ]`)
  # defines no attribute `name`, as in NixOS (which drops names whose definitions all vanish).
  present = v:
    if isAttrs v && v ? _type then
      if v._type == "if" then (if v.condition then present v.content else false)
      else if v._type == "merge" then any present v.contents
      else if v._type == "override" || v._type == "order" then present v.content
      else true
    else true;
  # An attrsOf's definitions by attribute name, each name only if some definition of it is present.
  definedNames = defs:
    lib.filterAttrs (_: vs: any (d: present d.value) vs)
      (zipAttrsWith (_: vs: vs) (map (d: mapAttrs (_: v: { inherit (d) file; pos = d.pos or null; value = v; }) d.value) defs));
  checked = type: loc: defs:
    let bad = filter (d: !type.check d.value) defs; in
    if bad != [ ] then
      throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${listDefs bad}"
    else type.merge loc defs;

  ints = rec {
    between = lo: hi: mkOptionType { name = "intBetween"; description = "integer between ${toString lo} and ${toString hi} (both inclusive)"; check = x: isInt x && x >= lo && x <= hi; };
    unsigned = mkOptionType { name = "unsignedInt"; description = "unsigned integer, meaning >=0"; check = x: isInt x && x >= 0; };
    positive = mkOptionType { name = "positiveInt"; description = "positive integer, meaning >0"; check = x: isInt x && x > 0; };
    u8 = between 0 255;
    u16 = between 0 65535;
    u32 = between 0 4294967295;
    s8 = between (-128) 127;
    s16 = between (-32768) 32767;
    s32 = between (-2147483648) 2147483647;
  };

  types = rec {
    inherit mkOptionType mergeEqualOption mergeOneOption ints;
    raw = mkOptionType { name = "raw"; description = "raw value"; merge = mergeOneOption; };
    unspecified = mkOptionType { name = "unspecified"; description = "unspecified value"; merge = loc: defs: if length defs == 1 then (head defs).value else anything.merge loc defs; };
    anything = mkOptionType {
      name = "anything";
      description = "anything";
      merge = loc: defs:
        if all (d: isAttrs d.value && !lib.isDerivation d.value) defs then
          zipAttrsWith (n: vs: anything.merge (loc ++ [ n ]) (map (v: { file = "?"; value = v; }) vs)) (map (d: d.value) defs)
        else if all (d: isList d.value) defs then concatMap (d: d.value) defs
        else mergeEqualOption loc defs;
    };
    bool = mkOptionType { name = "bool"; description = "boolean"; check = isBool; };
    int = mkOptionType { name = "int"; description = "signed integer"; check = isInt; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = isFloat; };
    number = either int float;
    port = ints.u16 // { description = "16 bit unsigned integer; between 0 and 65535 (both inclusive)"; };
    str = mkOptionType { name = "str"; description = "string"; check = isString; };
    strMatching = pattern: mkOptionType { name = "strMatching ${builtins.toJSON pattern}"; description = "string matching the pattern ${pattern}"; check = x: isString x && builtins.match pattern x != null; };
    nonEmptyStr = mkOptionType { name = "nonEmptyStr"; description = "non-empty string"; check = x: isString x && builtins.match "[ \t\n]*" x == null; };
    singleLineStr = mkOptionType { name = "singleLineStr"; description = "(optionally newline-terminated) single-line string"; check = x: isString x && builtins.match "[^\n]*\n?" x != null; };
    separatedString = sep: mkOptionType {
      name = "separatedString";
      description = if sep == "" then "Concatenated string" else "strings concatenated with ${builtins.toJSON sep}";
      check = isString;
      merge = loc: defs: concatStringsSep sep (map (d: d.value) defs);
    };
    lines = separatedString "\n" // { name = "lines"; description = "strings concatenated with \"\\n\""; };
    commas = separatedString "," // { name = "commas"; description = "strings concatenated with \",\""; };
    envVar = separatedString ":";
    # As in NixOS, a derivation is a path too (its output's).
    path = mkOptionType { name = "path"; description = "path"; check = x: isPath x || lib.isDerivation x || (isString x && builtins.substring 0 1 x == "/"); };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: lib.isDerivation x || (isString x && lib.hasPrefix "/nix/store/" x) || isPath x;
      merge = mergeOneOption;
    };
    attrs = mkOptionType { name = "attrs"; description = "attribute set"; check = isAttrs; merge = loc: defs: foldl' (a: d: a // d.value) { } defs; };
    enum = values: mkOptionType {
      name = "enum";
      description = "one of ${concatStringsSep ", " (map builtins.toJSON values)}";
      check = x: elem x values;
    };
    listOf = elemType: mkOptionType {
      name = "listOf";
      description = "list of ${elemType.description}";
      check = isList;
      merge = loc: defs:
        map (e: checked elemType e.loc [ e.def ]) (listEntries loc defs);
      checkDefinitions = checkElements elemType (loc: defs:
        map (e: elemType.checkDefinitions e.loc [ e.def ]) (listEntries loc (filter (d: isList d.value) defs)));
      getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "*" ]);
      nestedTypes.elemType = elemType;
    };
    attrsOf = elemType: mkOptionType {
      name = "attrsOf";
      description = "attribute set of ${elemType.description}";
      check = isAttrs;
      merge = loc: defs:
        mapAttrs (n: vs: checked elemType (loc ++ [ n ]) vs) (definedNames defs);
      checkDefinitions = checkElements elemType (loc: defs:
        lib.attrValues (mapAttrs (n: vs: elemType.checkDefinitions (loc ++ [ n ]) vs)
          (definedNames (filter (d: isAttrs d.value) defs))));
      getSubOptions = prefix: elemType.getSubOptions (prefix ++ [ "<name>" ]);
      nestedTypes.elemType = elemType;
    };
    # Lazy in its names' conditions (a `mkIf false` value is an attribute whose use fails), as NixOS's: for sets
    # whose definitions' conditions read the configuration that needs them, such as `_module.args`.
    lazyAttrsOf = elemType: (attrsOf elemType) // {
      name = "lazyAttrsOf";
      merge = loc: defs:
        zipAttrsWith (n: vs: checked elemType (loc ++ [ n ]) vs)
          (map (d: mapAttrs (_: v: { inherit (d) file; pos = d.pos or null; value = v; }) d.value) defs);
    };
    nullOr = elemType: mkOptionType {
      name = "nullOr";
      description = "null or ${elemType.description}";
      check = x: x == null || elemType.check x;
      merge = loc: defs:
        let nulls = filter (d: d.value == null) defs; in
        if length nulls == length defs then null
        else if nulls != [ ] then throw "The option `${showOption loc}' is defined both null and not null, in ${concatStringsSep ", " (map where defs)}."
        else elemType.merge loc defs;
      checkDefinitions = checkElements elemType (loc: defs: [ (elemType.checkDefinitions loc (filter (d: d.value != null) defs)) ]);
      getSubOptions = elemType.getSubOptions;
      nestedTypes.elemType = elemType;
    };
    either = t1: t2: mkOptionType {
      name = "either";
      description = "${t1.description} or ${t2.description}";
      check = x: t1.check x || t2.check x;
      merge = loc: defs:
        if all (d: t1.check d.value) defs then t1.merge loc defs
        else if all (d: t2.check d.value) defs then t2.merge loc defs
        else mergeOneOption loc defs;
      # As merge chooses: the type all definitions have.
      checkDefinitions =
        let sub = t: loc: defs: t.checkDefinitions or null == null || t.checkDefinitions loc defs; in
        if t1.checkDefinitions or null == null && t2.checkDefinitions or null == null then null
        else loc: defs:
          if all (d: t1.check d.value) defs then sub t1 loc defs
          else all (d: t2.check d.value) defs -> sub t2 loc defs;
    };
    oneOf = ts: foldl' either (head ts) (lib.tail ts);
    functionTo = elemType: mkOptionType {
      name = "functionTo";
      description = "function that evaluates to a(n) ${elemType.description}";
      check = isFunction;
      merge = loc: defs: x: elemType.merge loc (map (d: d // { value = d.value x; }) defs);
    };
    uniq = elemType: elemType // { merge = mergeOneOption; };
    unique = { message }: elemType: elemType // { merge = loc: defs: if length defs == 1 then (head defs).value else throw "The option `${showOption loc}' is defined multiple times, but it is unique:\n${message}"; };
    submoduleWith = { modules, specialArgs ? { } }:
      let
        # A set is the submodule's config (so `options` there is an option, as in NixOS's submodule); a
        # function or a path is a module.
        evalDefs = loc: defs: lib.evalModules {
          inherit specialArgs;
          prefix = loc;
          modules = modules ++ map (d: if isAttrs d.value then { _file = d.file; config = d.value; _defPos = d.pos or null; } else { _file = d.file; imports = [ d.value ]; }) defs;
          args = { name = lib.last loc; };
        };
      in
      mkOptionType {
        name = "submodule";
        description = "submodule";
        check = x: isAttrs x || isFunction x || isPath x;
        # As NixOS's: a definition without an option inside a submodule is an error once its value is used.
        merge = loc: defs: let r = evalDefs loc defs; in builtins.seq r.check r.config;
        checkDefinitions = loc: defs: (evalDefs loc defs).check;
        getSubOptions = prefix: (lib.evalModules { inherit modules specialArgs prefix; args = { name = "<name>"; }; }).options;
      };
    submodule = m: submoduleWith { modules = lib.toList m; };
    deferredModule = mkOptionType { name = "deferredModule"; description = "module"; merge = loc: defs: map (d: { _file = d.file; imports = [ d.value ]; }) defs; };
  };
in
types // { inherit checked; }
