{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.services.nginx;
  vhostOpts = { name, ... }: {
    options = {
      serverName = mkOption { type = types.str; default = name; description = "The host name this virtual host answers."; };
      root = mkOption { type = types.nullOr types.str; default = null; description = "The document root."; };
      listen = mkOption {
        type = types.listOf (types.submodule {
          options.addr = mkOption { type = types.str; default = "0.0.0.0"; description = "The address."; };
          options.port = mkOption { type = types.port; default = 80; description = "The port."; };
        });
        default = [ { addr = "0.0.0.0"; port = 80; } ];
        description = "Where to listen.";
      };
      locations = mkOption {
        type = types.attrsOf (types.submodule {
          options.root = mkOption { type = types.nullOr types.str; default = null; description = "The document root of the location."; };
          options.proxyPass = mkOption { type = types.nullOr types.str; default = null; description = "Where to pass requests."; };
          options.extraConfig = mkOption { type = types.lines; default = ""; description = "More directives."; };
        });
        default = { };
        description = "Locations, by path.";
      };
      extraConfig = mkOption { type = types.lines; default = ""; description = "More server directives."; };
    };
  };
  server = v: ''
    server {
    ${lib.concatMapStrings (l: "  listen ${l.addr}:${toString l.port};\n") v.listen}  server_name ${v.serverName};
    ${lib.optionalString (v.root != null) "  root ${v.root};\n"}${lib.concatStrings (lib.mapAttrsToList (p: l: "  location ${p} {\n${lib.optionalString (l.root != null) "    root ${l.root};\n"}${lib.optionalString (l.proxyPass != null) "    proxy_pass ${l.proxyPass};\n"}${l.extraConfig}  }\n") v.locations)}${v.extraConfig}}
  '';
in
{
  options.services.nginx = {
    enable = mkEnableOption "the nginx web server";
    package = mkOption { type = types.package; default = pkgs.nginx; defaultText = lib.literalExpression "pkgs.nginx"; description = "The nginx package."; };
    user = mkOption { type = types.str; default = "nginx"; description = "The user nginx's workers run as."; };
    group = mkOption { type = types.str; default = "nginx"; description = "Their group."; };
    virtualHosts = mkOption { type = types.attrsOf (types.submodule vhostOpts); default = { }; description = "Virtual hosts, by name."; };
  };
  config = lib.mkIf cfg.enable {
    users.users.${cfg.user} = { isSystemUser = true; group = cfg.group; description = "nginx web server"; };
    users.groups.${cfg.group} = { };
    environment.etc."nginx/nginx.conf".text = ''
      user ${cfg.user} ${cfg.group};
      pid /run/nginx/nginx.pid;
      error_log stderr;
      events { }
      http {
        access_log off;
        include ${pkgs.nginx-common}/etc/nginx/mime.types;
      ${lib.concatStrings (map server (lib.attrValues cfg.virtualHosts))}}
    '';
    systemd.services.nginx = {
      description = "Nginx Web Server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      script = ''
        mkdir -p /run/nginx /var/log/nginx /var/lib/nginx
        exec ${cfg.package}/sbin/nginx -c /etc/nginx/nginx.conf -g 'daemon off;'
      '';
      serviceConfig.Restart = "always";
      # A changed nginx.conf restarts nginx on switch (the unit carries the configuration's hash).
      restartTriggers = [ (builtins.hashString "sha256" config.environment.etc."nginx/nginx.conf".text) ];
    };
  };
}
