// pnpm hooks. `beforePacking` runs on the manifest of every `pnpm pack` and `pnpm publish`
// (which `changeset publish` uses): the published manifest keeps only the scripts a consumer's
// package manager runs. build/test/bench/typecheck name files the tarball does not ship.
// Only `beforePacking` is defined, so installs and the lockfile's resolution are unaffected.

/** Package name -> the scripts its consumers need (sys builds its addon at install without a prebuild). */
const CONSUMER_SCRIPTS = new Map([['@rxvmm/sys', ['install']]]);

function beforePacking(manifest) {
  const keep = CONSUMER_SCRIPTS.get(manifest.name) ?? [];
  const scripts = Object.fromEntries(
    Object.entries(manifest.scripts ?? {}).filter(([name]) => keep.includes(name)),
  );
  const { scripts: _dropped, ...rest } = manifest;
  return Object.keys(scripts).length > 0 ? { ...rest, scripts } : rest;
}

module.exports = { hooks: { beforePacking } };
