# expect: [ "The option definition `gone' no longer has any effect; please remove it.\nUse something else." ]
let lib = import <rixos/lib.nix>; in
let c = (lib.evalModules {
  modules = [
    { options.assertions = lib.mkOption { type = lib.types.listOf lib.types.attrs; default = [ ]; }; }
    (lib.mkRemovedOptionModule [ "gone" ] "Use something else.")
    { gone = 1; }
  ];
}).config; in map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions)
