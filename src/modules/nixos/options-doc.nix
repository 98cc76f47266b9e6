# Every option of a configuration (the core modules' and the user's), as a list of documented entries, for
# `rixos options`. Options inside submodules appear under their parent's name (`users.users.<name>.uid`).
{ configuration ? { } }:
let
  lib = import <rixos/lib.nix>;
  eval = import ./eval-config.nix { inherit configuration; };
  show = v:
    let r = builtins.tryEval (
      if lib.isDerivation v then "«package ${v.pname or v.name or "?"}»"
      else if lib.isFunction v then "«function»"
      else builtins.toJSON v);
    in if r.success then r.value else "«not shown»";
  text = opt: field:
    if opt ? "${field}Text" then (let t = opt."${field}Text"; in if lib.isAttrs t then t.text or "" else toString t)
    else if opt ? ${field} then show opt.${field} else null;
  entry = opt: {
    name = lib.showOption opt.loc;
    description = opt.description or "";
    type = (opt.type or lib.types.unspecified).description;
    default = text opt "default";
    example = text opt "example";
    declarations = opt.declarations or [ ];
    readOnly = opt.readOnly or false;
  };
  walk = depth: node:
    if lib.isOption node then
      if (node.internal or false) || (node.visible or true) == false then [ ]
      else [ (entry node) ] ++ (if depth < 3 then walk (depth + 1) ((node.type or lib.types.unspecified).getSubOptions node.loc) else [ ])
    else lib.concatMap (walk depth) (lib.attrValues node);
in
# A definition without an option (a typo) is an error here too, as when the system is built.
builtins.seq eval.check (lib.sortOn (e: e.name) (walk 0 eval.options))
