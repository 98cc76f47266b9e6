# expect: "HOST-EXAMPLE"
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [ { options.name = lib.mkOption { type = lib.types.str; apply = lib.toUpper; }; } { name = "host-example"; } ];
}).config.name
