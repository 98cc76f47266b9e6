# expect: "from specialArgs and options"
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  specialArgs = { greeting = "from specialArgs"; };
  modules = [
    { options.msg = lib.mkOption { type = lib.types.str; }; }
    ({ greeting, options, ... }: { msg = "${greeting} and ${if options ? msg then "options" else "?"}"; })
  ];
}).config.msg
