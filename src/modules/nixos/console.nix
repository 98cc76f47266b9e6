# The virtual consoles' keymap and font (console.*, as NixOS's) and the keyboard settings of an X server
# (services.xserver.layout, ...). Debian's systemd has no systemd-vconsole-setup and Debian's kbd ships no
# keymaps or fonts, so the keymaps come from Debian's console-data (decompressed once, so loadkeys needs no
# gzip), the xkb-made keymap from console-setup's ckbcomp over xkb-data, both chosen and checked with kbd's
# loadkeys while the system is built; vconsole-setup.service loads them early in boot with kbd.
{ config, lib, pkgs, options, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.console;
  xkb = config.services.xserver;
  isUnicode = lib.hasSuffix "UTF-8" (lib.toUpper config.i18n.defaultLocale);
  unicodeFlag = lib.optionalString isUnicode "-u";
  # A name to look up (`us`, `de-latin1`) rather than a file: not a path, a derivation or an absolute string.
  isName = v: builtins.isString v && !(lib.hasPrefix "/" v);
  # Files that can be checked while building: a path in the configuration (copied to the store) or in the
  # store; another absolute path is the running system's, used as it is.
  buildable = v: builtins.isPath v || lib.hasPrefix builtins.storeDir (toString v);

  # console-data's keymaps, gunzipped; loadkeys finds names (and a keymap's `include`s beside it) through
  # LOADKEYS_KEYMAP_PATH, and the includes of a keymap file elsewhere through LOADKEYS_INCLUDE_PATH.
  keymapTree = utils.runCommand "console-keymaps" { path = [ pkgs.findutils pkgs.gzip ]; } ''
    cp -r ${pkgs.console-data}/share/keymaps $out
    chmod -R u+w $out
    find $out -name '*.gz' -exec gunzip {} +
  '';
  keymapPath = "${keymapTree}/**";
  loadkeysEnv = { LOADKEYS_KEYMAP_PATH = keymapPath; LOADKEYS_INCLUDE_PATH = "${keymapTree}/i386/include:${keymapTree}/include"; };

  # The keymap console.useXkbConfig asks for: ckbcomp's output is self-contained (no includes).
  # (Debian's perl looks for its modules under /usr/lib only.)
  xkbKeymap = utils.runCommand "xkb-console-keymap" {
    path = [ pkgs.console-setup ];
    PERL5LIB = "${pkgs.perl-base}/lib/x86_64-linux-gnu/perl-base";
  } ''
    ckbcomp -I${pkgs.xkb-data}/share/X11/xkb -model ${lib.escapeShellArg xkb.xkbModel} \
      -layout ${lib.escapeShellArg xkb.layout} -variant ${lib.escapeShellArg xkb.xkbVariant} \
      -option ${lib.escapeShellArg xkb.xkbOptions} > $out || {
      echo "console.useXkbConfig: ckbcomp cannot make a keymap of services.xserver.layout = \"${xkb.layout}\", xkbVariant = \"${xkb.xkbVariant}\", xkbOptions = \"${xkb.xkbOptions}\", xkbModel = \"${xkb.xkbModel}\" (xkb-data's names: see ${pkgs.xkb-data}/share/X11/xkb/rules/base.lst)" >&2
      exit 1
    }
  '';

  # The keymap file vconsole-setup loads, found (a name) and parsed by loadkeys while building (`-m`, a C
  # table to stdout: the one mode that needs no console), so a typo fails the build instead of leaving the
  # kernel's US keymap in place. The output is a directory holding a link `keymap` (a store path that is
  # itself a link cannot be an input of a sandboxed build here).
  keymap =
    if !isName cfg.keyMap && !buildable cfg.keyMap then cfg.keyMap
    else "${keymapLink}/keymap";
  keymapLink = utils.runCommand "console-keymap" ({ path = [ pkgs.kbd pkgs.gzip pkgs.findutils pkgs.sed ]; } // loadkeysEnv) (
      if isName cfg.keyMap then ''
        if ! found=$(loadkeys -m -v ${unicodeFlag} ${lib.escapeShellArg cfg.keyMap} 2>&1 >/dev/null); then
          echo "console.keyMap = \"${cfg.keyMap}\" (in ${lib.concatStringsSep ", " options.console.keyMap.files}) is not a keymap of Debian's console-data: $found" >&2
          echo "names like it: $(find ${keymapTree} -iname '*${lib.replaceStrings [ "'" ] [ "" ] cfg.keyMap}*map' -printf '%f\n' | sed 's/\.k\?map$//' | sort | head -n 12 | tr '\n' ' ')" >&2
          exit 1
        fi
        mkdir $out
        ln -s "$(printf '%s\n' "$found" | sed -n 's/^Loading //p' | head -n 1)" $out/keymap
      '' else ''
        loadkeys -m ${unicodeFlag} ${cfg.keyMap} >/dev/null || { echo "console.keyMap: loadkeys cannot read ${cfg.keyMap}" >&2; exit 1; }
        mkdir $out
        ln -s ${cfg.keyMap} $out/keymap
      '');

  # A font name is looked up among console-setup's and console-data's fonts; the file is gunzipped.
  fontDirs = [ "${pkgs.console-setup-linux}/share/consolefonts" "${pkgs.console-data}/share/consolefonts" ];
  font =
    if cfg.font == null then null
    else if !isName cfg.font && !buildable cfg.font then cfg.font
    else utils.runCommand "console-font" { path = [ pkgs.gzip pkgs.findutils pkgs.sed ]; } ''
      file=${if isName cfg.font then "" else "${cfg.font}"}
      for dir in ${toString fontDirs}; do
        for ext in .psf.gz .psfu.gz .psf .psfu .gz ""; do
          [ -n "$file" ] || [ ! -f "$dir/${toString cfg.font}$ext" ] || file="$dir/${toString cfg.font}$ext"
        done
      done
      if [ -z "$file" ]; then
        echo "console.font = \"${toString cfg.font}\" (in ${lib.concatStringsSep ", " options.console.font.files}) is not a font of Debian's console-setup or console-data; fonts like it: $(find ${toString fontDirs} -iname '*${lib.replaceStrings [ "'" ] [ "" ] (toString cfg.font)}*' -printf '%f\n' | sed 's/\.psfu\?\.gz$//' | sort | head -n 12 | tr '\n' ' ')" >&2
        exit 1
      fi
      case "$file" in *.gz) gunzip -c "$file" > $out ;; *) cp "$file" $out ;; esac
    '';
  # The keymap is the kernel's, for every console; the keyboard mode and the font are each console's own:
  # the six a user reaches with Alt-F1..F6 (opening a console allocates it, so not all 63).
  ttys = map (n: "/dev/tty${toString n}") (lib.range 1 6);
in
{
  options.console = {
    keyMap = mkOption {
      type = types.either types.str types.path;
      default = "us";
      example = "de-latin1";
      description = "The keymap of the virtual consoles, loaded at boot by vconsole-setup.service: a name of Debian's console-data keymaps (`us`, `fr`, `de-latin1`, `dvorak`; checked when the system is built) or a path to a keymap file. With console.useXkbConfig it is made from services.xserver's settings; leave it unset then.";
    };
    useXkbConfig = mkOption {
      type = types.bool;
      default = false;
      description = "Whether the console's keymap is made from services.xserver.layout, xkbVariant, xkbOptions and xkbModel (with console-setup's ckbcomp, when the system is built) instead of console.keyMap. As in NixOS it is off by default: then the xserver settings only describe the keyboard for an X server (/etc/X11/xorg.conf.d/00-keyboard.conf, /etc/default/keyboard).";
    };
    font = mkOption {
      type = types.nullOr (types.either types.str types.path);
      default = null;
      example = "Lat15-Terminus16";
      description = "The virtual consoles' font, set with setfont on tty1 to tty6 at boot: a font of Debian's console-setup or console-data (`Lat15-Terminus16`, `LatArCyrHeb-16`; checked when the system is built), a path to a PSF file, or null for the kernel's built-in font.";
    };
  };
  options.services.xserver = {
    layout = mkOption { type = types.str; default = "us"; description = "The keyboard's XKB layout. rixos has no X server: it is written to /etc/X11/xorg.conf.d/00-keyboard.conf and /etc/default/keyboard, and is the console's layout only with console.useXkbConfig (as in NixOS)."; };
    xkbVariant = mkOption { type = types.str; default = ""; example = "altgr-intl"; description = "The XKB layout's variant; see services.xserver.layout for where it is used."; };
    xkbOptions = mkOption { type = types.str; default = "terminate:ctrl_alt_bksp"; example = "ctrl:nocaps,compose:ralt"; description = "XKB options, comma-separated; see services.xserver.layout for where they are used."; };
    xkbModel = mkOption { type = types.str; default = "pc104"; example = "pc105"; description = "The XKB keyboard model; see services.xserver.layout for where it is used."; };
  };
  config = {
    console.keyMap = lib.mkIf cfg.useXkbConfig xkbKeymap;
    environment.systemPackages = [ pkgs.kbd ];
    # So `loadkeys fr` finds console-data's keymaps in a shell too (Debian's kbd looks in /usr/share/keymaps).
    environment.variables = loadkeysEnv;
    environment.etc = {
      "vconsole.conf".text = "KEYMAP=${if isName cfg.keyMap then cfg.keyMap else keymap}\n"
        + lib.optionalString (font != null) "FONT=${if isName cfg.font then cfg.font else font}\n";
      "default/keyboard".text = ''
        XKBMODEL="${xkb.xkbModel}"
        XKBLAYOUT="${xkb.layout}"
        XKBVARIANT="${xkb.xkbVariant}"
        XKBOPTIONS="${xkb.xkbOptions}"
        BACKSPACE="guess"
      '';
      "X11/xorg.conf.d/00-keyboard.conf".text = ''
        Section "InputClass"
          Identifier "Keyboard catchall"
          MatchIsKeyboard "on"
          Option "XkbModel" "${xkb.xkbModel}"
          Option "XkbLayout" "${xkb.layout}"
          Option "XkbVariant" "${xkb.xkbVariant}"
          Option "XkbOptions" "${xkb.xkbOptions}"
        EndSection
      '';
    };
    # Early, as systemd's own vconsole setup: before sysinit.target, the gettys and password prompts.
    systemd.services.vconsole-setup = {
      description = "Keymap and font of the virtual consoles";
      wantedBy = [ "sysinit.target" ];
      before = [ "sysinit.target" "getty-pre.target" "systemd-ask-password-console.service" "shutdown.target" ];
      unitConfig = { DefaultDependencies = false; Conflicts = "shutdown.target"; ConditionPathExists = "/dev/tty0"; };
      serviceConfig = { Type = "oneshot"; RemainAfterExit = true; };
      path = [ pkgs.kbd pkgs.gzip ];
      environment = loadkeysEnv;
      script = ''
        for tty in ${toString ttys}; do
          kbd_mode ${if isUnicode then "-u" else "-a"} -C $tty
          ${lib.optionalString (font != null) "setfont -C $tty ${font} || echo \"vconsole-setup: $tty cannot take the font ${font} (console.font)\" >&2"}
        done
        loadkeys -q -C /dev/tty1 ${unicodeFlag} ${keymap}
      '';
    };
  };
}
