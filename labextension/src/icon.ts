import { LabIcon } from '@jupyterlab/ui-components';

// A shield with a check mark; `jp-icon3` follows the light and dark themes.
const SHIELD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5l-9-4zm-2 16-4-4 1.41-1.41L10 14.17l6.59-6.59L18 9l-8 8z"/>
</svg>`;

export const shieldIcon = new LabIcon({
  name: 'mlsecops-jupyter:shield',
  svgstr: SHIELD_SVG
});
