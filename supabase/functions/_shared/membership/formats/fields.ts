/**
 * Field schemas shared by the gateway formats.
 */
import { z } from "zod";

/** A JID or phone as a gateway sends it (normalised later). */
export const jidField = z.string().trim().min(1).max(128);

/** A source timestamp: epoch seconds/milliseconds as a number or text, or ISO-8601 text. */
export const timestampField = z.union([z.number().positive(), z.string().trim().min(1).max(64)]);
