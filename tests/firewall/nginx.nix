# nginx opens nothing by itself, as in NixOS.
# expect-not: tcp dport
{ ... }: {
  services.nginx.enable = true;
  services.nginx.virtualHosts."a.example".root = "/var/www/a";
}
