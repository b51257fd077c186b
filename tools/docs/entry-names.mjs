// A TypeDoc plugin: in a package with several entry points (`.` and `./testing`, `./linux`), TypeDoc
// names each module after its export path, so the main entry's module has an empty name. Name every
// entry module after the specifier a user imports: `@rxvmm/virtio-ring`, `@rxvmm/virtio-ring/testing`.
import { Converter, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const pkg = context.project.packageName ?? context.project.name;
    for (const module of context.project.getChildrenByKind(ReflectionKind.Module)) {
      module.name = module.name === '' ? pkg : `${pkg}/${module.name}`;
    }
  });
}
