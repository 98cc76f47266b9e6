# expect: { enable = true; extra = [ "from-enable" ]; port = 22; }
# Definitions may depend on the configuration they are part of: mkIf conditions are evaluated at the option.
let lib = import <rixos/lib.nix>; in
removeAttrs (lib.evalModules {
  modules = [
    { options.enable = lib.mkEnableOption "x";
      options.port = lib.mkOption { type = lib.types.port; default = 0; };
      options.extra = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; }; }
    ({ config, ... }: lib.mkIf config.enable { port = 22; })
    ({ config, ... }: { extra = lib.optional (config.port == 22) "from-enable"; })
    { enable = true; }
  ];
}).config [ "_module" ]
