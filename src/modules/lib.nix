# rixos' `lib`: the functions configurations commonly use, option types, and the module system
# (`evalModules`). Written for rixos from the NixOS manual's description of the module system's semantics.
let
  b = builtins;

  lib = rec {
    # ---- functions
    id = x: x;
    const = x: _: x;
    flip = f: x: y: f y x;
    fix = f: let x = f x; in x;
    inherit (b) map filter length head tail elem elemAt concatLists concatMap genList foldl' attrNames
      attrValues hasAttr getAttr listToAttrs mapAttrs removeAttrs intersectAttrs isAttrs isList isString isInt
      isBool isFunction isPath isFloat typeOf toString toJSON fromJSON concatStringsSep replaceStrings
      stringLength substring match split seq deepSeq trace throw abort tryEval sort catAttrs zipAttrsWith
      groupBy partition all any;

    # ---- lists
    foldr = op: nul: list: let len = length list; go = n: if n == len then nul else op (elemAt list n) (go (n + 1)); in go 0;
    foldl = op: nul: list: foldl' op nul list;
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    flatten = x: if isList x then concatMap flatten x else [ x ];
    unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
    last = l: elemAt l (length l - 1);
    init = l: genList (elemAt l) (length l - 1);
    take = n: l: genList (elemAt l) (if n < length l then n else length l);
    drop = n: l: genList (i: elemAt l (i + n)) (if n < length l then length l - n else 0);
    range = first: last: if first > last then [ ] else genList (n: first + n) (last - first + 1);
    reverseList = l: let n = length l; in genList (i: elemAt l (n - i - 1)) n;
    findFirst = pred: default: l: let r = filter pred l; in if r == [ ] then default else head r;
    imap0 = f: l: genList (i: f i (elemAt l i)) (length l);
    imap1 = f: l: genList (i: f (i + 1) (elemAt l i)) (length l);
    toList = x: if isList x then x else [ x ];
    count = pred: l: length (filter pred l);
    sortOn = f: sort (a: b': f a < f b');

    # ---- attribute sets
    nameValuePair = name: value: { inherit name value; };
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (attrNames attrs);
    mapAttrs' = f: attrs: listToAttrs (mapAttrsToList f attrs);
    filterAttrs = pred: attrs: listToAttrs (concatMap (n: let v = attrs.${n}; in if pred n v then [ (nameValuePair n v) ] else [ ]) (attrNames attrs));
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    attrByPath = path: default: set:
      if path == [ ] then set
      else if isAttrs set && set ? ${head path} then attrByPath (tail path) default set.${head path}
      else default;
    hasAttrByPath = path: set: attrByPath path null set != null || (attrByPath path true set == true && attrByPath path false set == false);
    getAttrFromPath = path: set: attrByPath path (throw "cannot find attribute `${concatStringsSep "." path}'") set;
    setAttrByPath = path: value: if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
    recursiveUpdateUntil = pred: lhs: rhs:
      let f = path: zipAttrsWith (n: values:
        let here = path ++ [ n ]; in
        if length values == 1 || pred here (elemAt values 1) (head values) then head values
        else f here values);
      in f [ ] [ rhs lhs ];
    recursiveUpdate = recursiveUpdateUntil (path: lhs: rhs: !(isAttrs lhs && isAttrs rhs));
    foldAttrs = op: nul: list: foldl' (acc: a: acc // mapAttrs (n: v: op v (acc.${n} or nul)) a) { } (reverseList list);
    attrsToList = attrs: mapAttrsToList nameValuePair attrs;
    optionalAttrs = cond: attrs: if cond then attrs else { };
    isDerivation = x: isAttrs x && x ? type && x.type == "derivation";
    collect = pred: attrs: if pred attrs then [ attrs ] else if isAttrs attrs then concatMap (collect pred) (attrValues attrs) else [ ];

    # ---- strings
    optionalString = cond: s: if cond then s else "";
    concatStrings = concatStringsSep "";
    concatMapStrings = f: l: concatStrings (map f l);
    concatMapStringsSep = sep: f: l: concatStringsSep sep (map f l);
    makeSearchPath = dir: pkgs: concatStringsSep ":" (map (p: "${p}/${dir}") pkgs);
    makeBinPath = pkgs: concatStringsSep ":" (concatMap (p: [ "${p}/bin" "${p}/sbin" ]) pkgs);
    concatLines = l: concatMapStrings (s: s + "\n") l;
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    hasSuffix = suf: s: let ls = stringLength s; lf = stringLength suf; in lf <= ls && substring (ls - lf) lf s == suf;
    hasInfix = inf: s: b.match ".*${escapeRegex inf}.*" s != null;
    removePrefix = pre: s: if hasPrefix pre s then substring (stringLength pre) (-1) s else s;
    removeSuffix = suf: s: if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;
    splitString = sep: s: filter isString (split (escapeRegex sep) s);
    escapeRegex = replaceStrings [ "\\" "[" "]" "{" "}" "(" ")" "." "*" "+" "?" "^" "$" "|" ] [ "\\\\" "\\[" "\\]" "\\{" "\\}" "\\(" "\\)" "\\." "\\*" "\\+" "\\?" "\\^" "\\$" "\\|" ];
    toUpper = replaceStrings (lowerChars) (upperChars);
    toLower = replaceStrings (upperChars) (lowerChars);
    lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
    upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
    escapeShellArg = s: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
    escapeShellArgs = l: concatMapStringsSep " " escapeShellArg l;
    strings = { inherit concatStringsSep hasPrefix hasSuffix; };
    # As NixOS's: a part that is not an identifier is quoted (`fileSystems."/data".fsType`); placeholders not.
    showOption = path: concatStringsSep "." (map (part:
      if elem part [ "<name>" "*" "<function body>" ] then part
      else if b.match "[a-zA-Z_][a-zA-Z0-9_'-]*" part != null && !elem part [ "if" "then" "else" "assert" "with" "let" "in" "rec" "inherit" "or" ] then part
      else b.toJSON part) path);
    boolToString = x: if x then "true" else "false";
    versionOlder = v1: v2: b.compareVersions v2 v1 == 1;
    versionAtLeast = v1: v2: !versionOlder v1 v2;

    # ---- properties of definitions
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    mkOverride = priority: content: { _type = "override"; inherit priority content; };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkImageMediaOverride = mkOverride 60;
    mkForce = mkOverride 50;
    mkVMOverride = mkOverride 10;
    mkOrder = priority: content: { _type = "order"; inherit priority content; };
    mkBefore = mkOrder 500;
    mkAfter = mkOrder 1500;
    defaultOrderPriority = 1000;
    defaultOverridePriority = 100;

    # ---- options
    mkOption = attrs: attrs // { _type = "option"; };
    isOption = x: isAttrs x && x ? _type && x._type == "option";
    mkEnableOption = name: mkOption { type = types.bool; default = false; example = true; description = "Whether to enable ${name}."; };
    mkPackageOption = pkgs: name: extra:
      let path = toList (extra.default or name); in
      mkOption ({ type = types.package; default = attrByPath path (throw "package ${showOption path} not found") pkgs; description = "The ${name} package to use."; }
        // removeAttrs extra [ "default" ]);
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };
    mdDoc = x: x;
    mkRenamedOptionModule = from: to: { config, options, ... }: {
      options = setAttrByPath from (mkOption { visible = false; description = "Renamed to ${showOption to}."; });
      config = mkIf (attrByPath from { isDefined = false; } options).isDefined (mkMerge [
        { warnings = [ "The option `${showOption from}' has been renamed to `${showOption to}'." ]; }
        (setAttrByPath to (attrByPath from null config))
      ]);
    };
    mkRemovedOptionModule = from: why: { options, ... }: {
      options = setAttrByPath from (mkOption { visible = false; description = "Removed: ${why}"; apply = _: throw "The option `${showOption from}' can no longer be used since it's been removed. ${why}"; });
      config.assertions = [{ assertion = !(attrByPath from { isDefined = false; } options).isDefined; message = "The option definition `${showOption from}' no longer has any effect; please remove it.\n${why}"; }];
    };

    # ---- files in the store that may name other store paths (builtins.toFile may not)
    writeText = name: text: derivation { inherit name text; system = "x86_64-linux"; builder = "builtin:write"; };
    writeScript = name: text: derivation { inherit name text; system = "x86_64-linux"; builder = "builtin:write"; executable = true; };

    # ---- types
    types = import ./types.nix { inherit lib; };

    # ---- the module system
    evalModules = import ./modules.nix { inherit lib; };
  };
in
lib
