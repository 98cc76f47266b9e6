# sudo, as NixOS's security.sudo: /etc/sudoers from the options (checked with visudo when the system is
# built), the setuid wrappers sudo and sudoedit, /etc/sudo.conf naming the store's plugins (Debian's sudo
# looks for them under /usr/libexec/sudo) and its PAM service.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.security.sudo;
  sudo = pkgs.sudo;
  commandOptions = [ "NOPASSWD" "PASSWD" "NOEXEC" "EXEC" "SETENV" "NOSETENV" "LOG_INPUT" "NOLOG_INPUT" "LOG_OUTPUT" "NOLOG_OUTPUT" ];
  ruleOpts = {
    options = {
      users = mkOption { type = types.listOf (types.either types.int types.str); default = [ ]; description = "Users the rule applies to, by name or uid."; };
      groups = mkOption { type = types.listOf (types.either types.int types.str); default = [ ]; description = "Groups the rule applies to, by name or gid."; };
      host = mkOption { type = types.str; default = "ALL"; description = "The host the rule applies on."; };
      runAs = mkOption { type = types.str; default = "ALL:ALL"; description = "Whom the commands may run as: `USER:GROUP`, `USER` or `:GROUP`."; };
      commands = mkOption {
        type = types.listOf (types.either types.str (types.submodule {
          options.command = mkOption { type = types.str; description = "The command: a path (any arguments), or a path and its arguments."; };
          options.options = mkOption { type = types.listOf (types.enum commandOptions); default = [ ]; description = "Tags such as NOPASSWD and SETENV."; };
        }));
        description = "The commands allowed: strings, or { command; options; }.";
      };
    };
  };
  userString = u: if lib.isInt u then "#${toString u}" else u;
  groupString = g: if lib.isInt g then "%#${toString g}" else "%${g}";
  commandString = c: if lib.isString c then c else lib.concatMapStrings (o: "${o}: ") c.options + c.command;
  ruleLines = r: map (who: "${who} ${r.host}=(${r.runAs}) ${lib.concatMapStringsSep ", " commandString r.commands}\n")
    (map userString r.users ++ map groupString r.groups);
  sudoersText = ''
    # Made by rixos from security.sudo.*: change the configuration, not this file.
  '' + lib.concatStrings (lib.concatMap ruleLines cfg.extraRules) + cfg.extraConfig;
  # sudo refuses to run at all with a broken sudoers: check it while building, not at the first sudo.
  sudoersUnchecked = lib.writeText "sudoers-unchecked" sudoersText;
  sudoers = utils.runCommand "sudoers" { } ''
    ${sudo}/sbin/visudo -c -q -f ${sudoersUnchecked} || { echo "security.sudo: the generated sudoers is not valid:" >&2; cat -n ${sudoersUnchecked} >&2; exit 1; }
    cp ${sudoersUnchecked} $out
  '';
in
{
  options.security.sudo = {
    enable = mkOption { type = types.bool; default = true; description = "Whether to provide sudo (a setuid wrapper) and /etc/sudoers."; };
    wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "Whether members of wheel must type their password for sudo."; };
    extraRules = mkOption {
      type = types.listOf (types.submodule ruleOpts);
      default = [ ];
      example = lib.literalExpression ''[ { users = [ "backup" ]; commands = [ { command = "/run/current-system/sw/bin/systemctl restart nginx"; options = [ "NOPASSWD" ]; } ]; } ]'';
      description = "sudoers rules, after root's and wheel's (the last rule that matches wins).";
    };
    extraConfig = mkOption { type = types.lines; default = ""; description = "Text appended to /etc/sudoers."; };
  };
  config = lib.mkIf cfg.enable {
    security.sudo.extraRules = lib.mkMerge [
      (lib.mkOrder 400 [ { users = [ "root" ]; commands = [ { command = "ALL"; options = [ "SETENV" ]; } ]; } ])
      (lib.mkOrder 600 [ { groups = [ "wheel" ]; commands = [ { command = "ALL"; options = (lib.optional (!cfg.wheelNeedsPassword) "NOPASSWD") ++ [ "SETENV" ]; } ]; } ])
    ];
    security.wrappers = {
      sudo = { source = "${sudo}/bin/sudo"; owner = "root"; group = "root"; setuid = true; };
      sudoedit = { source = "${sudo}/bin/sudoedit"; owner = "root"; group = "root"; setuid = true; };
    };
    environment.etc = {
      sudoers = { source = sudoers; mode = "0440"; };
      "sudo.conf".text = ''
        # A directory: sudo appends plugin names to it as they are, so it ends in /.
        Path plugin_dir ${sudo}/libexec/sudo/
        Path noexec ${sudo}/libexec/sudo/sudo_noexec.so
        Path intercept ${sudo}/libexec/sudo/sudo_intercept.so
        Plugin sudoers_policy sudoers.so
        Plugin sudoers_io sudoers.so
        Plugin sudoers_audit sudoers.so
      '';
      "pam.d/sudo".text = config.environment.etc."pam.d/other".text;
    };
  };
}
