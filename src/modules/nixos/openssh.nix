{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.services.openssh;
  yesNo = b: if b then "yes" else "no";
  # A file of its own, so the unit names it (restartTriggers) and a change of it restarts sshd on switch.
  sshdConfig = lib.writeText "sshd_config" ''
      ${lib.concatMapStrings (p: "Port ${toString p}\n") cfg.ports}PermitRootLogin ${cfg.settings.PermitRootLogin}
      PasswordAuthentication ${yesNo cfg.settings.PasswordAuthentication}
      AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u
      HostKey /etc/ssh/ssh_host_ed25519_key
      # Through PAM, as NixOS: an account whose password is locked (`!`, the users' default) still logs in with
      # a key; without PAM, sshd refuses locked accounts whatever the method. PAM's keyboard-interactive
      # prompts stay off, so PasswordAuthentication alone decides whether passwords are accepted.
      UsePAM yes
      KbdInteractiveAuthentication no
      # sshd would give sessions its compiled-in PATH (/usr/bin:/bin), which holds nothing here.
      SetEnv PATH=/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin
      ${cfg.extraConfig}'';
in
{
  options.services.openssh = {
    enable = mkEnableOption "the OpenSSH server";
    package = mkOption { type = types.package; default = pkgs.openssh-server; defaultText = lib.literalExpression "pkgs.openssh-server"; description = "The OpenSSH server package."; };
    ports = mkOption { type = types.listOf types.port; default = [ 22 ]; description = "Ports sshd listens on."; };
    openFirewall = mkOption { type = types.bool; default = true; description = "Whether to open the ports in the firewall."; };
    settings = {
      PermitRootLogin = mkOption { type = types.enum [ "yes" "without-password" "prohibit-password" "forced-commands-only" "no" ]; default = "prohibit-password"; description = "Whether root may log in."; };
      PasswordAuthentication = mkOption { type = types.bool; default = true; description = "Whether passwords are accepted."; };
    };
    extraConfig = mkOption { type = types.lines; default = ""; description = "More sshd_config lines."; };
  };
  config = lib.mkIf cfg.enable {
    users.users.sshd = { isSystemUser = true; group = "sshd"; description = "SSH privilege separation user"; home = "/var/empty"; };
    users.groups.sshd = { };
    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall cfg.ports;
    # Each user's keys, where sshd_config's AuthorizedKeysFile looks (root-owned, read-only, as StrictModes wants).
    environment.etc = lib.mapAttrs' (name: u: lib.nameValuePair "ssh/authorized_keys.d/${name}" {
      text = lib.concatLines u.openssh.authorizedKeys.keys;
    }) (lib.filterAttrs (_: u: u.openssh.authorizedKeys.keys != [ ]) config.users.users) // {
      "ssh/sshd_config".source = sshdConfig;
      "pam.d/sshd".text = config.environment.etc."pam.d/other".text;
    };
    systemd.services.sshd = {
      description = "SSH Daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      script = ''
        if ! [ -f /etc/ssh/ssh_host_ed25519_key ]; then
          ${pkgs.openssh-client}/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
        fi
        mkdir -p /run/sshd
        exec ${cfg.package}/sbin/sshd -D -f /etc/ssh/sshd_config
      '';
      serviceConfig.Restart = "always";
      # As NixOS: a changed sshd is restarted in one step after activation, and only the listening daemon is
      # stopped, so the sessions (the one running the switch among them) live on.
      stopIfChanged = false;
      restartTriggers = [ sshdConfig ];
      serviceConfig.KillMode = "process";
    };
  };
}
