{ lib, ... }:
let inherit (lib) mkOption types; in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
      description = "Conditions that must hold, as `{ assertion; message; }`; a false one stops the build with its message.";
    };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; description = "Messages printed when the system is built."; };
    system.stateVersion = mkOption { type = types.str; default = "25.11"; description = "The release whose defaults stateful data was created with."; };
    system.name = mkOption { type = types.str; default = "rixos"; description = "The name of the system, in the toplevel's store path."; };
    system.activationScripts = mkOption {
      type = types.attrsOf (types.either types.str (types.submodule {
        options.text = mkOption { type = types.lines; description = "The script."; };
        options.deps = mkOption { type = types.listOf types.str; default = [ ]; description = "Scripts that must run first."; };
      }));
      default = { };
      description = "Shell fragments run when the system is activated (at boot and on switch).";
    };
    system.build = mkOption { type = types.lazyAttrsOf types.unspecified; default = { }; internal = true; description = "What the system is made of, by name."; };
  };
}
