// Optimization: placeholder until the optimization API lands (replaced below).
import { empty, h } from "../dom.js";
export function renderIndex(main) { main.append(h("h1", { text: "Optimization" }), empty("Coming soon.")); }
export const renderProduct = renderIndex;
export const renderExperiment = renderIndex;
