// The backends the shared test suites run on: every backend that can load here.
// CI machines that build the native addon set RESNET_REQUIRE_NATIVE=1 so that a
// broken addon fails the run instead of quietly testing the reference backend alone.
import { availableBackends, nativeUnavailableReason } from '../../src/index.js';

export type BackendName = ReturnType<typeof availableBackends>[number];

export function backendsUnderTest(): BackendName[] {
  const names = availableBackends();
  if (process.env['RESNET_REQUIRE_NATIVE'] === '1' && !names.includes('native')) {
    throw new Error(`RESNET_REQUIRE_NATIVE=1 but the native backend cannot load: ${nativeUnavailableReason()}. ` +
      'Build it (npm rebuild; needs libdnnl-dev) or unset RESNET_REQUIRE_NATIVE.');
  }
  return names;
}
