# expect: [ "first" "before" "a" "b" "after" ]
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [
    { options.l = lib.mkOption { type = lib.types.listOf lib.types.str; }; }
    { l = lib.mkAfter [ "after" ]; }
    { l = [ "a" ]; }
    { l = lib.mkBefore [ "before" ]; }
    { l = lib.mkOrder 100 [ "first" ]; }
    { l = [ "b" ]; }
  ];
}).config.l
