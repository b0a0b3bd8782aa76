/**
 * The provider chosen by `SEND_PROVIDER`.
 */
import type { ProviderConfig } from "../config.ts";
import { EvolutionProvider } from "./evolution.ts";
import { MetaCloudProvider } from "./meta_cloud.ts";
import type { SendProvider } from "./provider.ts";
import { TwilioProvider } from "./twilio.ts";
import { WahaProvider } from "./waha.ts";

/** Builds the configured provider. */
export function createProvider(config: ProviderConfig, timeoutMs: number): SendProvider {
  switch (config.kind) {
    case "meta":
      return new MetaCloudProvider({ ...config, timeoutMs });
    case "evolution":
      return new EvolutionProvider({ ...config, timeoutMs });
    case "waha":
      return new WahaProvider({ ...config, timeoutMs });
    case "twilio":
      return new TwilioProvider({ ...config, timeoutMs });
  }
}
