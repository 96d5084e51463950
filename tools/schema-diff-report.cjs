// graphql-inspector's completion handler for tools/schema-diff.sh. The inspector has already
// printed every change; its default handler then exits 1 on a breaking change. Ours writes one
// summary line and leaves the exit code alone: breaking changes are reported, not fatal (see the
// script for why). Errors (a schema that does not parse, a missing file) still fail the run.
module.exports = function report({ breakingChanges, dangerousChanges, nonBreakingChanges }) {
  const counts =
    `${breakingChanges.length} breaking, ${dangerousChanges.length} dangerous, ` +
    `${nonBreakingChanges.length} safe`;
  if (breakingChanges.length > 0) {
    console.log(`schema-diff: BREAKING CHANGES in schema.graphql (${counts})`);
  } else {
    console.log(`schema-diff: no breaking changes (${counts})`);
  }
};
