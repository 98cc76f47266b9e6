# expect: { alice = { home = "/home/alice"; shell = "sh"; }; bob = { home = "/srv/bob"; shell = "zsh"; }; }
# Definitions a submodule accepts without complaint: functions of its arguments, and sets in which `options`
# is an option's name (as fileSystems' mount options), not a module's declarations.
let
  lib = import <rixos/lib.nix>;
  inherit (lib) types mkOption;
  user = { name, ... }: {
    options.home = mkOption { type = types.str; default = "/home/${name}"; };
    options.shell = mkOption { type = types.str; default = "sh"; };
    options.options = mkOption { type = types.listOf types.str; default = [ ]; };
  };
  r = lib.evalModules {
    modules = [
      { options.users = mkOption { type = types.attrsOf (types.submodule user); default = { }; }; }
      { users.alice = { }; users.bob = { name, ... }: { home = "/srv/${name}"; }; }
      { users.bob = { shell = "zsh"; options = [ "x" ]; }; }
    ];
  };
in builtins.seq r.check (lib.mapAttrs (_: u: removeAttrs u [ "_module" "options" ]) r.config.users)
