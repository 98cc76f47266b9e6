# sshd opens its ports (services.openssh.openFirewall defaults to true).
# expect: tcp dport { 22, 2222 } accept
{ ... }: {
  services.openssh.enable = true;
  services.openssh.ports = [ 2222 22 ];
}
