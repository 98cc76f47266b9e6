# Logging in on consoles: agetty on tty1 (and, through systemd's getty generator, on the serial console the
# kernel was given), shadow's login, and the PAM configuration they use, with PAM modules named by store path
# (Debian's libpam would look for them under /lib).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.getty;
  pam = "${pkgs.libpam-modules}/lib/x86_64-linux-gnu/security";
  agetty = "${pkgs.util-linux}/sbin/agetty";
  loginProgram = "${pkgs.login}/bin/login";
  autologin = lib.optionalString (cfg.autologinUser != null) " --autologin ${cfg.autologinUser}";
  gettyUnit = description: after: args: {
    description = description;
    after = [ "systemd-user-sessions.service" "getty-pre.target" ] ++ after;
    before = [ "getty.target" ];
    unitConfig = { IgnoreOnIsolate = true; ConditionPathExists = "/dev/%I"; };
    serviceConfig = {
      ExecStart = "-${agetty} --login-program ${loginProgram}${autologin} ${args}";
      Type = "idle";
      Restart = "always";
      RestartSec = 0;
      UtmpIdentifier = "%I";
      TTYPath = "/dev/%I";
      TTYReset = true;
      TTYVHangup = true;
      KillMode = "process";
      IgnoreSIGPIPE = false;
      SendSIGHUP = true;
      Environment = "LANG=";
    };
  };
  # Unix passwords only; every service without its own file gets the same stack.
  stack = ''
    auth      required  ${pam}/pam_unix.so nullok
    account   required  ${pam}/pam_unix.so
    password  required  ${pam}/pam_unix.so yescrypt
    session   required  ${pam}/pam_unix.so
    session   optional  ${pam}/pam_env.so
  '';
in
{
  options.services.getty = {
    autologinUser = mkOption { type = types.nullOr types.str; default = null; description = "A user logged in automatically on the consoles."; };
  };
  config = {
    systemd.services."getty@" = gettyUnit "Getty on %I" [ "rc-local.service" ] "--noclear %I $TERM";
    systemd.services."serial-getty@" = gettyUnit "Serial Getty on %I" [ ] "--keep-baud 115200,57600,38400,9600 %I $TERM";
    environment.etc = {
      "pam.d/login".text = stack;
      "pam.d/other".text = stack;
      "pam.d/su".text = "auth sufficient ${pam}/pam_rootok.so\n" + stack;
      "pam.d/passwd".text = stack;
      "login.defs".text = ''
        ENV_PATH PATH=/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin
        ENV_SUPATH PATH=/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin
        TTYGROUP tty
        TTYPERM 0620
        UMASK 022
      '';
      shells.text = "/bin/sh\n${pkgs.bash}/bin/bash\n/run/current-system/sw/bin/bash\n";
      "nsswitch.conf".text = ''
        passwd: files
        group: files
        shadow: files
        hosts: files dns
        networks: files
        services: files
        protocols: files
      '';
    };
  };
}
