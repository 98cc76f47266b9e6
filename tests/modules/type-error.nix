# expect-error: A definition for option `port' is not of type `16 bit unsigned integer; between 0 and 65535 (both inclusive)'.
# expect-error: type-error.nix:5': 70000
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [ { options.port = lib.mkOption { type = lib.types.port; }; } { port = 70000; } ];
}).config.port
