export { UI_PATH, mountDashboard } from './routes.js';
export type { DashboardOptions } from './routes.js';
export { ASSET_NAMES, STATIC_SUBDIR, findStaticDir, loadAssets } from './assets.js';
export type { AssetName, StaticAsset } from './assets.js';
