# The default disk image (`rixos image build --format raw|qcow2` without -c): the default system installed on a
# disk, DHCP on every wired interface, sshd. There is no passwordless login on an installed image: a
# configuration importing this file must give root a password or an SSH key.
{ config, lib, ... }:
let
  root = config.users.users.root;
in
{
  networking.hostName = lib.mkDefault "rixos";
  networking.useDHCP = lib.mkDefault true;
  services.openssh.enable = lib.mkDefault true;
  services.openssh.settings.PermitRootLogin = lib.mkDefault "prohibit-password";
  # Screen and serial console both (the last is /dev/console): clouds and headless VMs show only the serial one.
  boot.kernelParams = [ "console=tty0" "console=ttyS0,115200n8" ];
  # The boot menu on the serial console as well, where a headless VM or a cloud's console shows it.
  boot.loader.grub.extraConfig = ''
    serial --unit=0 --speed=115200
    terminal_input --append serial
    terminal_output --append serial
  '';
  assertions = [{
    assertion = (root.hashedPassword != null && root.hashedPassword != "!") || root.initialHashedPassword != null
      || root.initialPassword != null || root.openssh.authorizedKeys.keys != [ ];
    message = ''
      images/raw.nix: root has neither a password nor an SSH key, and an installed image has no passwordless login.
      Build from a configuration that imports <rixos/images/raw.nix> and sets users.users.root.hashedPassword
      (mkpasswd -m sha-512) or users.users.root.openssh.authorizedKeys.keys.'';
  }];
}
