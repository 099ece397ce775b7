"""SQLModel tables and their Create/Update/Public shapes. Importing this package registers
every table on ``SQLModel.metadata`` (Alembic and the tests rely on that)."""

from models.audit import AuditChainHead, AuditEvent, AuditEventPublic
from models.dataset import Dataset, DatasetCreate, DatasetVersion, PiiStatus
from models.promotion import (
    ApprovalDecision,
    PromotionPolicy,
    PromotionRequest,
    PromotionSideEffect,
)
from models.registry import (
    ModelAsset,
    ModelAssetCreate,
    ModelKind,
    ModelVersion,
    ModelVersionCardUpdate,
    ModelVersionCreate,
    RegistrySync,
    Source,
    Stage,
    StageChange,
)
from models.team import Team, TeamCreate, TeamPublic, TeamUpdate
from models.training import Backend, ComputePrice, FineTuneJob, JobEvent, JobStatus
from models.usage import (
    Budget,
    BudgetAlert,
    GatewayModelLink,
    IdentityMapping,
    IngestedFile,
    PriceOverride,
    UsageDaily,
    UsageDailyTeamModel,
    UsageEvent,
)
from models.user import Role, User, UserCreate, UserPublic, UserUpdate

__all__ = [
    "ApprovalDecision",
    "AuditChainHead",
    "AuditEvent",
    "AuditEventPublic",
    "Backend",
    "Budget",
    "BudgetAlert",
    "ComputePrice",
    "Dataset",
    "DatasetCreate",
    "DatasetVersion",
    "FineTuneJob",
    "GatewayModelLink",
    "IdentityMapping",
    "IngestedFile",
    "JobEvent",
    "JobStatus",
    "ModelAsset",
    "ModelAssetCreate",
    "ModelKind",
    "ModelVersion",
    "ModelVersionCardUpdate",
    "ModelVersionCreate",
    "PiiStatus",
    "PriceOverride",
    "PromotionPolicy",
    "PromotionRequest",
    "PromotionSideEffect",
    "RegistrySync",
    "Role",
    "Source",
    "Stage",
    "StageChange",
    "Team",
    "TeamCreate",
    "TeamPublic",
    "TeamUpdate",
    "UsageDaily",
    "UsageDailyTeamModel",
    "UsageEvent",
    "User",
    "UserCreate",
    "UserPublic",
    "UserUpdate",
]
